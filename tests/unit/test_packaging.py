from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tools import requirements

ROOT = Path(__file__).resolve().parents[2]


def test_lambda_requirements_match_the_lock_file() -> None:
    # GIVEN the pinned dependencies in uv.lock
    expected = (requirements.render(), requirements.render_bundled())
    # WHEN we read what sam build will install into the zip, with the layer and bundled
    actual = (
        requirements.TARGET.read_text(encoding="utf-8"),
        requirements.BUNDLED_TARGET.read_text(encoding="utf-8"),
    )
    # THEN they are the same, so the zip ships exactly the tested versions
    assert actual == expected, "a requirements file is stale: run `make requirements`"
    assert requirements.main([]) == 0


def _pinned(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert all("==" in line for line in lines)
    return dict(line.split("==") for line in lines)


def _locked(name: str) -> str:
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    (version,) = {p["version"] for p in lock["package"] if p["name"] == name}
    return str(version)


def test_the_bundled_requirements_pin_every_runtime_dependency_but_boto3() -> None:
    # GIVEN the `client` extra, which is what the handler needs besides the library
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pinned = _pinned(requirements.BUNDLED_TARGET.read_text(encoding="utf-8"))
    client = project["optional-dependencies"]["client"]
    runtime = {re.split(r"[<>=\[]", dep)[0] for dep in client}
    # THEN the bundled build pins all of it at the locked versions, except the runtime's boto3
    assert "aws-lambda-powertools" in runtime
    assert runtime - {"boto3"} <= set(pinned)
    assert "boto3" not in pinned
    assert pinned["aws-lambda-powertools"] == _locked("aws-lambda-powertools")


def test_the_default_build_leaves_powertools_and_its_dependencies_to_the_layer() -> None:
    # GIVEN what the bundled build adds for Powertools
    bundled = _pinned(requirements.BUNDLED_TARGET.read_text(encoding="utf-8"))
    # WHEN we read what a plain `sam build` installs
    default = _pinned(requirements.TARGET.read_text(encoding="utf-8"))
    # THEN none of it: Powertools, jmespath and typing-extensions come from AWS's layer
    assert {"aws-lambda-powertools", "jmespath", "typing-extensions"} <= set(bundled)
    assert default == {}


def test_a_stale_requirements_file_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a bundled requirements file that lost its Powertools line
    stale = tmp_path / "src" / "requirements-bundled.txt"
    stale.parent.mkdir()
    stale.write_text(requirements.BUNDLED_HEADER, encoding="utf-8")
    monkeypatch.setattr(requirements, "BUNDLED_TARGET", stale)
    monkeypatch.setattr(requirements, "TARGET", tmp_path / "src" / "missing.txt")
    # WHEN the check runs / THEN it fails and names both files
    assert requirements.main([]) == 1
    err = capsys.readouterr().err
    assert f"{stale} is stale" in err
    assert "missing.txt is stale" in err


def test_library_ships_type_information() -> None:
    assert (ROOT / "src" / "ses_smtp_rotator" / "py.typed").is_file()


def _python(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (a fresh sys.modules), with this test run's path."""
    return subprocess.run(  # noqa: S603 - this interpreter, code written here
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )


@pytest.mark.parametrize("module", ["ses_smtp_rotator.password", "ses_smtp_rotator.cli"])
def test_the_password_functions_and_derive_import_no_aws_library(module: str) -> None:
    # WHEN the password module (or the command line, for derive) is imported on its own
    done = _python(
        f"import sys, {module}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'boto3', 'botocore', 'aws_lambda_powertools'}))"
    )
    # THEN neither boto3 nor Powertools came with it (they are extras)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_command_without_its_extra_says_which_to_install() -> None:
    # GIVEN an installation without boto3 (the `aws` extra) / WHEN `export` runs
    done = _python(
        "import sys; sys.modules['boto3'] = sys.modules['botocore'] = None; "
        "from ses_smtp_rotator.cli import main; "
        "sys.exit(main(['export', '--secret-id', 'x']))"
    )
    # THEN it exits 2 with one line naming the extra and how to install it while the package is
    # on no index (from the wheel, or from a clone), not a traceback
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1
    assert "py3-none-any.whl[aws]'" in done.stderr
    assert "pip install '.[aws]'" in done.stderr


def test_licence_file_matches_the_declared_licence() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    licence = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    assert licence.lstrip().startswith("Apache License\n")
    assert "Version 2.0, January 2004" in licence
    assert "END OF TERMS AND CONDITIONS" in licence


def test_extras_split_the_dependencies_by_use() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = {
        name: {re.split(r"[<>=\[]", dep)[0] for dep in deps}
        for name, deps in project["optional-dependencies"].items()
    }
    # THEN the library itself needs nothing, and each use adds only what it imports
    assert project["dependencies"] == []
    assert extras == {
        "aws": {"boto3"},
        "client": {"boto3", "aws-lambda-powertools"},
        "django": {"boto3", "aws-lambda-powertools", "django"},
    }


def test_make_test_runs_the_wheel_check() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    test_target = re.search(r"^test: (.*?)##", makefile, flags=re.MULTILINE)
    assert test_target is not None
    assert "package" in test_target.group(1).split()
    assert "python -m tools.wheel_check" in makefile
