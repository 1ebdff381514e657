"""Generate ``src/requirements.txt`` (what ``sam build`` puts in the Lambda zip) from ``uv.lock``.

The ``client`` extra of ``pyproject.toml`` (what the handler needs besides the library: Powertools)
with every version taken from the lock file, less boto3 and its own dependencies, which the Lambda
Python runtime already provides. A unit test compares the file with this output, so the two never
drift: run ``make requirements`` after ``make lock``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "src" / "requirements.txt"
HEADER = (
    "# Generated from uv.lock by `make requirements`; do not edit by hand.\n"
    "# The Lambda zip's dependencies: the project's `client` extra less boto3,\n"
    "# which the Lambda Python runtime provides.\n"
)


def uv_binary() -> str:
    """Return the uv that `make setup` installed (or ``$UV``)."""
    return os.environ.get("UV", str(ROOT / ".tools" / "uv" / "bin" / "uv"))


def render() -> str:
    """Return the expected content of ``src/requirements.txt``."""
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
            "--prune",
            "boto3",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return HEADER + result.stdout


def main(argv: list[str] | None = None) -> int:
    """Write (``--write``) or check the file; return 1 when a check finds it stale."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite src/requirements.txt")
    args = parser.parse_args(argv)
    expected = render()
    if args.write:
        TARGET.write_text(expected, encoding="utf-8")
        return 0
    if TARGET.read_text(encoding="utf-8") != expected:
        sys.stderr.write("src/requirements.txt is stale: run `make requirements`\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
