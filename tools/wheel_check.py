"""Build the package and use it as a new user would: ``python -m tools.wheel_check``.

Builds the wheel and the sdist with ``uv build`` into ``dist/``, checks that both carry the
licence and the wheel declares the extras, installs the wheel alone (no dependencies, no index)
into an empty virtual environment, and runs ``ses-smtp-rotator --version`` and a ``derive`` from
there. The environment has neither boto3 nor Powertools, which proves that the password functions
and ``derive`` need nothing beyond the standard library. Offline: nothing is downloaded.

Exit codes: 0 every check passed; 1 a check failed (each failure is printed).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from pathlib import Path
from typing import Final

from tools.requirements import uv_binary

ROOT: Final = Path(__file__).resolve().parent.parent
# AWS's documented example key and its us-east-1 SMTP password (tests/unit/test_password.py).
DOC_KEY: Final = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DOC_PASSWORD: Final = "BLBM/9hSUELfq8Gw+rU1YcBjkOxGbhT2XG763xVLGWL9"  # noqa: S105 - AWS's example
EXTRAS: Final = ("aws", "client", "django")


def run(*argv: str | Path, stdin: str = "", env: dict[str, str] | None = None) -> str:
    """Run ``argv`` (no shell); return its stdout, or raise with its stderr."""
    done = subprocess.run(  # noqa: S603 - our own tools and the installed console script
        [str(arg) for arg in argv],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env=env,
    )
    if done.returncode != 0:
        msg = f"{Path(str(argv[0])).name} {' '.join(map(str, argv[1:3]))}: {done.stderr.strip()}"
        raise RuntimeError(msg)
    return done.stdout


def build(out_dir: Path) -> tuple[Path, Path]:
    """Build the sdist and the wheel into ``out_dir``; return (wheel, sdist)."""
    run(uv_binary(), "build", "--quiet", "--out-dir", out_dir, ROOT)
    (wheel,) = out_dir.glob("*.whl")
    (sdist,) = out_dir.glob("*.tar.gz")
    return wheel, sdist


def check_archives(wheel: Path, sdist: Path) -> list[str]:
    """Return what is missing from the built archives (licence, metadata, extras, sources)."""
    problems: list[str] = []
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = next(
            archive.read(name).decode() for name in names if name.endswith(".dist-info/METADATA")
        )
    if not any(name.endswith(".dist-info/licenses/LICENSE") for name in names):
        problems.append("the wheel has no LICENSE")
    license_id = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    if f"License-Expression: {license_id}" not in metadata:
        problems.append(f"the wheel's metadata does not declare {license_id}")
    problems += [
        f"the wheel does not provide the {extra} extra"
        for extra in EXTRAS
        if f"Provides-Extra: {extra}" not in metadata
    ]
    required = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    if any("extra ==" not in line for line in required):
        problems.append("the wheel requires a package outside the extras")
    with tarfile.open(sdist) as archive:
        members = {Path(*Path(name).parts[1:]).as_posix() for name in archive.getnames()}
    problems += [
        f"the sdist has no {name}"
        for name in ("LICENSE", "README.md", "pyproject.toml", "src/ses_smtp_rotator/password.py")
        if name not in members
    ]
    return problems


def check_installed(wheel: Path, venv: Path) -> list[str]:
    """Install ``wheel`` alone into a new ``venv``; return what does not work from there."""
    run(uv_binary(), "venv", "--quiet", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    uv = uv_binary()
    run(uv, "pip", "install", "--quiet", "--offline", "--no-deps", "--python", python, wheel)
    program = venv / "bin" / "ses-smtp-rotator"
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(venv)}  # nothing of ours
    problems: list[str] = []
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    if run(program, "--version", env=env).strip() != f"ses-smtp-rotator {version}":
        problems.append("--version does not print the project's version")
    derived = run(program, "derive", "--region", "us-east-1", stdin=DOC_KEY + "\n", env=env)
    if derived.strip() != DOC_PASSWORD:
        problems.append("derive does not print AWS's documented password for its example key")
    probe = "import importlib.util as u; print(u.find_spec('boto3'), u.find_spec('botocore'))"
    if run(python, "-c", probe, env=env).strip() != "None None":
        problems.append("the wheel's environment is not empty: the derive check proves nothing")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Build, check and try the package; print one line per check and return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="where to build")
    args = parser.parse_args(argv)
    args.dist.mkdir(exist_ok=True)
    for old in [*args.dist.glob("*.whl"), *args.dist.glob("*.tar.gz")]:
        old.unlink()
    try:
        wheel, sdist = build(args.dist)
        problems = check_archives(wheel, sdist)
        with tempfile.TemporaryDirectory(prefix="wheel-check-") as scratch:
            problems += check_installed(wheel, Path(scratch) / "venv")
    except (RuntimeError, subprocess.TimeoutExpired, ValueError) as err:
        problems = [str(err)]
    for problem in problems:
        sys.stderr.write(f"wheel check: {problem}\n")
    if problems:
        return 1
    sys.stdout.write(
        f"wheel check: {wheel.name} and {sdist.name} built; the wheel alone in an empty "
        "environment runs --version and derive\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
