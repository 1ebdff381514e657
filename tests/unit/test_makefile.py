"""The Makefile's targets that a newcomer runs first: what they install and how they fail."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - make from PATH, targets written here
        ["make", "--no-print-directory", "-C", str(ROOT), *args],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_make_demo_builds_only_the_demos_environment() -> None:
    # WHEN `make demo` is planned (dry run) / THEN it syncs .venv only: not the SAM or checkov ones
    done = make("-n", "demo")
    assert done.returncode == 0, done.stderr
    assert "python -m sandbox.demo" in done.stdout
    assert ".venv-sam" not in done.stdout
    assert ".venv-checkov" not in done.stdout


def test_make_local_runs_the_local_world_in_the_dev_environment() -> None:
    # WHEN `make local` is planned (dry run) / THEN it runs sandbox.local from .venv only
    done = make("-n", "local", "LOCAL_ARGS=--dir /tmp/x")
    assert done.returncode == 0, done.stderr
    assert "python -m sandbox.local --dir /tmp/x" in done.stdout
    assert ".venv-sam" not in done.stdout


def test_make_build_without_python_3_13_stops_with_one_line() -> None:
    # GIVEN no python3.13 where PY313_DIR points / WHEN `make build` runs
    done = make("build", "PY313_DIR=/nonexistent")
    # THEN it stops before anything runs, with one line saying what to install
    assert done.returncode != 0
    assert done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert "install Python 3.13" in line
    assert "PY313_DIR" in line


def test_make_build_uses_a_real_python_not_a_shim() -> None:
    # WHEN `make build` is planned / THEN the python3.13 it puts on PATH is not pyenv's shim
    done = make("-n", "build")
    if done.returncode != 0:
        pytest.skip("no python3.13 on this machine: the test above covers that case")
    (line,) = [line for line in done.stdout.splitlines() if "sam build" in line]
    assert "shims" not in line
    directory = line.split('PATH="', 1)[1].split(":", 1)[0]
    assert (Path(directory) / "python3.13").is_file()


def test_make_template_checks_every_fleet_template_and_builds_the_fleet() -> None:
    # WHEN `make template` is planned / THEN every fleet/*.yaml is validated, linted and scanned
    done = make("-n", "template")
    assert done.returncode == 0, done.stderr
    (loop,) = [line for line in done.stdout.splitlines() if "for file in" in line]
    listed = set(loop.split("for file in", 1)[1].split(";", 1)[0].split())
    assert listed == {"template.yaml"} | {
        f"fleet/{path.name}" for path in (ROOT / "fleet").glob("*.yaml")
    }
    # AND the fleet's function is built, as `make build-fleet` builds it
    assert "--template-file fleet/template.yaml --build-dir .aws-sam/fleet" in done.stdout
    fleet = make("-n", "build-fleet")
    if fleet.returncode == 0:  # without a python3.13 it stops like `make build` (tested above)
        assert "--template-file fleet/template.yaml --build-dir .aws-sam/fleet" in fleet.stdout


def _python_make_finds(
    tmp_path: Path, names: list[str], *args: str
) -> subprocess.CompletedProcess[str]:
    """Run make with a PATH holding only ``names`` (links to this interpreter); print PYTHON."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in names:
        (bin_dir / name).symlink_to(sys.executable)
    make_path = shutil.which("make")
    assert make_path is not None
    return subprocess.run(  # noqa: S603 - make itself, a probe target written here
        [make_path, "--no-print-directory", "-s", "-C", str(ROOT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
    )


PROBE = "--eval=probe: ; @echo [$(PYTHON)]"


@pytest.mark.parametrize(
    ("names", "args", "found"),
    [
        pytest.param(["python3.12"], [], "python3.12", id="only-3.12"),
        pytest.param(["python3.13"], [], "python3.13", id="only-3.13"),
        pytest.param(["python3.13", "python3.11"], [], "python3.11", id="3.11-first"),
        pytest.param(["python3.11"], ["PYTHON=python3.12"], "python3.12", id="override"),
    ],
)
def test_make_finds_the_first_python_3_11_to_3_13_on_path(
    tmp_path: Path, names: list[str], args: list[str], found: str
) -> None:
    # GIVEN a PATH with only some of python3.11, 3.12 and 3.13 / WHEN make reads the Makefile
    done = _python_make_finds(tmp_path, names, *args, PROBE, "probe")
    # THEN its PYTHON is the first of them (or the one given)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"[{found}]"


def test_make_without_any_python_3_11_or_later_says_what_to_do(tmp_path: Path) -> None:
    # GIVEN a PATH with no python3.11, 3.12 or 3.13 / WHEN the tools' environment is to be made
    done = _python_make_finds(tmp_path, [], "-n", "-B", ".tools/uv/bin/uv")
    # THEN make stops with one line naming what it looked for and how to point at one
    assert done.returncode != 0
    assert "found none of python3.11 python3.12 python3.13 on PATH" in done.stderr
    assert "make PYTHON=" in done.stderr
