"""The command line: ``ses-smtp-rotator`` and its subcommands (:data:`COMMANDS`).

Secrets (secret access keys, SMTP passwords) are read from stdin, the environment or a prompt
(:mod:`ses_smtp_rotator._console`), never from the command line: argv is visible in shell history
and in ``ps``. A secret-looking argument is refused.

Exit codes (mapped in :func:`main`, and only there):

* ``0``: done (passwords printed; the SMTP login succeeded; credentials exported; ``sync``'s pass
  done, or its loop stopped by SIGTERM/SIGINT; a rotation started, or with ``--wait`` finished);
* ``1``: the command ran and failed: the login was refused (the output says why and the likely
  cause), or the secret could not be read or holds no credentials yet (never rotated), or
  ``sync --once``'s ``--on-change`` command failed, or ``status`` found a problem (with
  ``--fleet``: in any app, or found no app), or the rotation ``rotate --wait`` followed failed,
  was cancelled or timed out;
* ``2``: bad input or usage (an unknown option, named with its closest; an unknown region; no
  region for a command that calls AWS; no key given, or not a key; an argument that looks like a
  secret; a malformed secret; a missing extra). With no command at all, the usage is printed.

Subcommands live in :data:`COMMANDS`; adding one means adding a :class:`Command` there.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, NoReturn

from ses_smtp_rotator import (
    __version__,
    _check,
    _console,
    _derive,
    _export,
    _rotate,
    _status_fleet,
    _sync,
)
from ses_smtp_rotator._console import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    SECRET_ACCESS_KEY_ENV,
    SMTP_PASSWORD_ENV,
)
from ses_smtp_rotator.exceptions import SesSmtpCredentialsError, UsageError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

PROG = "ses-smtp-rotator"
__all__ = ["COMMANDS", "EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "Command", "build_parser", "main"]
# Modules an extra brings (pyproject.toml), and the extra to install when one is missing.
OPTIONAL_MODULES: Final = {
    "boto3": "aws",
    "botocore": "aws",
    "aws_lambda_powertools": "client",
}


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors become :class:`UsageError` (one line, exit code 2)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


@dataclass(frozen=True)
class Command:
    """A subcommand: its name, help, arguments, the variable its secret comes from, and its run."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    secret_env: str | None = None  # None: the command takes no secret at all


COMMANDS: tuple[Command, ...] = (
    Command(
        "derive",
        f"derive SES SMTP passwords from a secret access key (stdin or {SECRET_ACCESS_KEY_ENV})",
        _derive.configure,
        _derive.run,
        SECRET_ACCESS_KEY_ENV,
    ),
    Command(
        "check",
        f"log in to an SES SMTP endpoint and diagnose a 535 (password: stdin or "
        f"{SMTP_PASSWORD_ENV}; with --secret-id, from the secret)",
        _check.configure,
        _check.run,
        SMTP_PASSWORD_ENV,
    ),
    Command(
        "export",
        "print or write a secret's SMTP credentials (env, json, postfix); it prints a password",
        _export.configure,
        _export.run,
    ),
    Command(
        "sync",
        "keep a file (env, json, postfix) in step with the secret: once, or in a loop; "
        "optionally run a command after each change",
        _sync.configure,
        _sync.run,
    ),
    Command(
        "status",
        "show a secret's rotation state, its versions and its user's keys, and the fix of each "
        "problem found (exit 1 when one is found); with --fleet, one line per app of a fleet",
        _status_fleet.configure,
        _status_fleet.run,
    ),
    Command(
        "rotate",
        "start a rotation now; with --wait follow it step by step to its end (exit 1 when a "
        "step fails or --timeout passes)",
        _rotate.configure,
        _rotate.run,
    ),
)


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of every subcommand in :data:`COMMANDS`.

    Examples
    --------
    >>> build_parser().parse_args(["derive", "--region", "eu-west-1"]).region
    ['eu-west-1']
    """
    parser = _Parser(
        prog=PROG,
        description="Derive Amazon SES SMTP passwords and check SMTP logins.",
        epilog="Exit codes: 0 ok, 1 the check failed, 2 bad input or usage.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        sub = subparsers.add_parser(
            command.name, help=command.help, description=command.help, allow_abbrev=False
        )
        command.configure(sub)
        sub.set_defaults(run=command.run, secret_env=command.secret_env)
    return parser


# What a secret on argv looks like: a long run of base64 characters (a secret access key is 40,
# an SMTP password 44), or an option named after one.
_SECRET_VALUE: Final = re.compile(r"[A-Za-z0-9+/=_-]{16,}")
_SECRET_NAME: Final = re.compile(r"secret|passw|token|key", re.IGNORECASE)


def _looks_secret(tokens: Sequence[str]) -> bool:
    for token in tokens:
        name, equals, value = token.partition("=")
        if token.startswith("-") and (_SECRET_NAME.search(name) or _SECRET_VALUE.fullmatch(value)):
            return True
        if not token.startswith("-") and _SECRET_VALUE.fullmatch(token) and not equals:
            return True
    return False


def _unexpected(args: argparse.Namespace, extra: Sequence[str], known: Sequence[str]) -> str:
    """Return the one line that answers arguments the command does not take (no value shown)."""
    if _looks_secret(extra):
        where = (
            f"pipe the secret on stdin or set {args.secret_env}"
            if args.secret_env
            else f"`{args.command}` takes no secret"
        )
        return (
            "an argument looks like a secret (values not shown): secrets are never taken from the "
            f"command line because argv leaks to shell history and `ps`; {where}"
        )
    options = list(dict.fromkeys(t.split("=", 1)[0] for t in extra if t.startswith("-")))
    if not options:
        return f"`{args.command}` takes no positional argument ({len(extra)} given, not shown)"
    answers = []
    for option in options:
        close = difflib.get_close_matches(option, known, n=1, cutoff=0.6)
        answers.append(f"{option} (did you mean {close[0]}?)" if close else option)
    return (
        f"`{args.command}` has no option {', '.join(answers)}; "
        f"`{PROG} {args.command} --help` lists its options"
    )


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        subparsers = next(a for a in parser._actions if a.dest == "command")  # noqa: SLF001
        sub = subparsers.choices[args.command]  # type: ignore[index]
        known = [o for action in sub._actions for o in action.option_strings]  # noqa: SLF001
        raise UsageError(_unexpected(args, extra, known))
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit code (0 ok, 1 check failed, 2 bad input).

    Examples
    --------
    >>> main(["derive", "--region", "not a region"])  # doctest: +SKIP
    2
    """
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        build_parser().print_help(sys.stderr)
        return EXIT_USAGE
    command = "this command"
    try:
        args = _parse(argv)
        command = f"`{args.command}`"
        return int(args.run(args))
    except SystemExit as done:  # --help
        return done.code if isinstance(done.code, int) else EXIT_OK
    except ModuleNotFoundError as err:
        extra = OPTIONAL_MODULES.get((err.name or "").partition(".")[0])
        if extra is None:
            raise
        _console.err(
            f"{PROG}: error: {command} needs {err.name}, which this installation lacks: install "
            f"the `{extra}` extra: from the wheel, pip install "
            f"'ses_smtp_rotator-{__version__}-py3-none-any.whl[{extra}]' (`make package` builds "
            f"it into dist/); from a clone, pip install '.[{extra}]'"
        )
        return EXIT_USAGE
    except SesSmtpCredentialsError as err:
        # Input errors (UsageError, InvalidRegionError, InvalidSecretError...) are ValueErrors.
        usage = isinstance(err, ValueError)
        _console.err(f"{PROG}: {'error: ' if usage else ''}{err}")
        return EXIT_USAGE if usage else EXIT_FAILED
