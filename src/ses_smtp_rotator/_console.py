"""The commands' side of the terminal: secrets in, lines out, exit codes.

Secrets (a secret access key, an SMTP password) come from a pipe on stdin, else from one
environment variable, else, when stdin is a terminal, from a prompt that does not echo. Never from
the command line: argv is visible in shell history and in ``ps``.
"""

from __future__ import annotations

import argparse
import getpass
import math
import os
import sys
from typing import TYPE_CHECKING, Final

from ses_smtp_rotator.exceptions import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# The one variable every command reads a secret access key from. Not AWS_SECRET_ACCESS_KEY: that
# one holds the user's own AWS credentials, which exporting an SMTP user's key would replace.
SECRET_ACCESS_KEY_ENV: Final = "SES_SECRET_ACCESS_KEY"  # noqa: S105 - a name
SMTP_PASSWORD_ENV: Final = "SMTP_PASSWORD"  # noqa: S105 - a variable's name


def read_secret(env_name: str, what: str) -> str:
    """Return a secret from piped stdin, else ``env_name``, else a prompt on a terminal.

    Raises
    ------
    UsageError
        None of them holds a value, or stdin holds more than one line.
    """
    stdin = sys.stdin
    interactive = stdin is not None and stdin.isatty()
    value = ""
    if stdin is not None and not interactive:
        try:
            value = stdin.read().strip()
        except OSError:  # no readable stdin (a daemon, a captured test run): use the environment
            value = ""
    if "\n" in value:
        msg = f"stdin holds more than one line: pipe only the {what}"
        raise UsageError(msg)
    value = value or os.environ.get(env_name, "").strip()
    if not value and interactive:
        value = getpass.getpass(f"{what} (not echoed): ").strip()
    if not value:
        msg = (
            f"no {what} given: pipe it on stdin, set {env_name}, or run in a terminal to be "
            "asked (never pass it as an argument)"
        )
        if env_name == SECRET_ACCESS_KEY_ENV and os.environ.get("AWS_SECRET_ACCESS_KEY"):
            msg += "; AWS_SECRET_ACCESS_KEY is not read: it holds your own AWS credentials"
        raise UsageError(msg)
    return value


def optional_secret(env_name: str) -> str | None:
    """Return ``env_name``'s value, or ``None``: a secret that only improves an answer."""
    return os.environ.get(env_name, "").strip() or None


def out(text: str) -> None:
    """Write one line (or several) to stdout."""
    sys.stdout.write(text + "\n")


def err(text: str) -> None:
    """Write one line to stderr (newlines in ``text`` become spaces)."""
    sys.stderr.write(text.replace("\n", " ") + "\n")


REGION_HELP: Final = (
    "the secret's region (default: the secret ARN's, else AWS_DEFAULT_REGION or the profile's, "
    "else AWS_REGION)"
)


def add_region(parser: argparse.ArgumentParser, help_text: str = REGION_HELP) -> None:
    """Add ``--region``: where the command calls AWS (see :func:`ses_smtp_rotator._aws.region`)."""
    parser.add_argument("--region", help=help_text)


def seconds_type(maximum: float, example: str) -> Callable[[str], float]:
    """Return an argparse type for a finite number of seconds above 0 and at most ``maximum``.

    ``0``, a negative number, ``nan``, ``inf``, more than ``maximum`` or not a number is refused
    (exit code 2), with ``example`` as a value that works.
    """

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and 0 < value <= maximum):
            msg = f"must be a number of seconds above 0 and at most {maximum:.0f}, such as "
            msg += example
            raise argparse.ArgumentTypeError(msg)
        return value

    return parse
