"""Generate the Lambda zip's requirements files (what ``sam build`` installs) from ``uv.lock``.

Two files, both from the ``client`` extra of ``pyproject.toml`` (what the handler needs besides
the library: Powertools) with every version taken from the lock file, less boto3 and its own
dependencies, which the Lambda Python runtime already provides:

* ``src/requirements.txt``, what a plain ``sam build`` reads: also less Powertools and the
  dependencies it pulls in, which AWS's published Powertools layer provides (the templates'
  ``PowertoolsLayerArn``). Nothing is left, so the zip holds only this project's code.
* ``src/requirements-bundled.txt``, what ``make build-bundled`` passes to ``sam build --manifest``
  for regions without that layer: Powertools and its dependencies at the locked versions.

A unit test compares both files with this output, so they never drift: run ``make requirements``
after ``make lock``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "src" / "requirements.txt"
BUNDLED_TARGET = ROOT / "src" / "requirements-bundled.txt"
POWERTOOLS = "aws-lambda-powertools"
_GENERATED = "# Generated from uv.lock by `make requirements`; do not edit by hand.\n"
HEADER = _GENERATED + (
    "# The Lambda zip's dependencies: the project's `client` extra less boto3, which the Lambda\n"
    "# Python runtime provides, and less Powertools and its dependencies, which AWS's Powertools\n"
    "# layer provides (PowertoolsLayerArn). Bundled instead: src/requirements-bundled.txt.\n"
)
BUNDLED_HEADER = _GENERATED + (
    "# `make build-bundled` (sam build --manifest): the project's `client` extra less boto3,\n"
    "# which the Lambda Python runtime provides; Powertools goes into the zip.\n"
)


def uv_binary() -> str:
    """Return the uv that `make setup` installed (or ``$UV``)."""
    return os.environ.get("UV", str(ROOT / ".tools" / "uv" / "bin" / "uv"))


def _export(*prune: str) -> str:
    pruned = [arg for name in prune for arg in ("--prune", name)]
    # `uv` is the pinned binary from `make setup`; the arguments are constant.
    result = subprocess.run(  # noqa: S603
        [
            uv_binary(),
            "export",
            "--frozen",
            "--no-default-groups",
            "--no-emit-project",
            "--no-hashes",
            "--no-header",
            "--no-annotate",
            "--extra",
            "client",
            *pruned,
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout


def render() -> str:
    """Return the expected content of ``src/requirements.txt`` (Powertools from the layer)."""
    return HEADER + _export("boto3", POWERTOOLS)


def render_bundled() -> str:
    """Return the expected content of ``src/requirements-bundled.txt`` (Powertools bundled)."""
    return BUNDLED_HEADER + _export("boto3")


def main(argv: list[str] | None = None) -> int:
    """Write (``--write``) or check both files; return 1 when a check finds one stale."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite both requirements files")
    args = parser.parse_args(argv)
    stale = 0
    for target, expected in ((TARGET, render()), (BUNDLED_TARGET, render_bundled())):
        if args.write:
            target.write_text(expected, encoding="utf-8")
        elif not target.is_file() or target.read_text(encoding="utf-8") != expected:
            shown = target.relative_to(ROOT) if target.is_relative_to(ROOT) else target
            sys.stderr.write(f"{shown} is stale: run `make requirements`\n")
            stale = 1
    return stale


if __name__ == "__main__":
    raise SystemExit(main())
