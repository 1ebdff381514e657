from __future__ import annotations

import tomllib
from pathlib import Path

from tools import requirements

ROOT = Path(__file__).resolve().parents[2]


def test_lambda_requirements_match_the_lock_file() -> None:
    # GIVEN the pinned dependencies in uv.lock
    expected = requirements.render()
    # WHEN we read what sam build will install into the zip
    actual = requirements.TARGET.read_text(encoding="utf-8")
    # THEN they are the same, so the zip ships exactly the tested versions
    assert actual == expected, "src/requirements.txt is stale: run `make requirements`"


def test_lambda_requirements_pin_every_runtime_dependency_but_boto3() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pinned = {
        line.split("==")[0]
        for line in requirements.TARGET.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    }
    runtime = {dep.split(">")[0].split("=")[0].split("<")[0] for dep in project["dependencies"]}
    assert runtime - {"boto3"} <= pinned
    assert "boto3" not in pinned
    assert all("==" in line for line in requirements.render().splitlines()[3:])


def test_library_ships_type_information() -> None:
    assert (ROOT / "src" / "ses_smtp_rotator" / "py.typed").is_file()
