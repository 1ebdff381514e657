"""The command line: ``ses-smtp-rotator`` and its subcommands (:data:`COMMANDS`).

Secrets (secret access keys, SMTP passwords) are read from stdin, the environment or a prompt
(:mod:`ses_smtp_rotator._console`), never from the command line: argv is visible in shell history
and in ``ps``. A secret-looking argument is refused.

Exit codes (mapped in :func:`main`, and only there):

* ``0``: done (passwords printed; the SMTP login succeeded; credentials exported; ``sync``'s pass
  done, or its loop stopped by SIGTERM/SIGINT; a rotation started, or with ``--wait`` finished);
* ``1``: the command ran and failed: the login was refused (the output says why and the likely
  cause), or the secret could not be read or holds no credentials yet (never rotated), or
  ``sync --once``'s ``--on-change`` command failed, or ``status`` found a problem, or the
  rotation ``rotate --wait`` followed failed, was cancelled or timed out;
* ``2``: bad input or usage (unknown region, no key given, an argument where a secret must not be,
  a malformed secret, a missing extra).

Subcommands live in :data:`COMMANDS`; adding one means adding a :class:`Command` there.
"""

from __future__ import annotations

import argparse
import json
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, NoReturn

from ses_smtp_rotator import __version__, _check, _console, _export, _rotate, _status, _sync
from ses_smtp_rotator._console import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    SECRET_ACCESS_KEY_ENV,
    SMTP_PASSWORD_ENV,
)
from ses_smtp_rotator.endpoints import validate_region
from ses_smtp_rotator.exceptions import SesSmtpCredentialsError, UsageError
from ses_smtp_rotator.password import derive_legacy_v2_password, derive_smtp_password

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


def _configure_derive(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--region",
        action="append",
        default=[],
        help="SES region to derive the password for; repeat for several",
    )
    parser.add_argument(
        "--legacy-v2",
        action="store_true",
        help="derive the deprecated version 2 password (not region-bound) instead",
    )
    parser.add_argument("--json", action="store_true", help='print {"region": "password"}')


def _run_derive(args: argparse.Namespace) -> int:
    regions = [validate_region(region) for region in dict.fromkeys(args.region)]
    if not regions and not args.legacy_v2:
        msg = "give at least one --region (the SES endpoint's region, for example eu-west-1)"
        raise UsageError(msg)
    key = _console.read_secret(SECRET_ACCESS_KEY_ENV, "secret access key")
    if args.legacy_v2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            legacy = derive_legacy_v2_password(key)
        _console.err("note: version 2 passwords are deprecated; derive v4 with --region")
        passwords = dict.fromkeys(regions, legacy) or {"*": legacy}
    else:
        passwords = {region: derive_smtp_password(key, region) for region in regions}
    if args.json:
        _console.out(json.dumps(passwords))
    elif len(passwords) == 1:
        _console.out(next(iter(passwords.values())))
    else:
        _console.out("\n".join(f"{region}\t{password}" for region, password in passwords.items()))
    return EXIT_OK


COMMANDS: tuple[Command, ...] = (
    Command(
        "derive",
        f"derive SES SMTP passwords from a secret access key (stdin or {SECRET_ACCESS_KEY_ENV})",
        _configure_derive,
        _run_derive,
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
        "problem found (exit 1 when one is found)",
        _status.configure,
        _status.run,
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


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    args, extra = build_parser().parse_known_args(argv)
    if extra:
        # Never echo them: the likeliest stray argument is a key or a password.
        options = sorted({token.split("=", 1)[0] for token in extra if token.startswith("-")})
        named = f" ({', '.join(options)})" if options else ""
        where = (
            f"pipe the secret on stdin or set {args.secret_env}"
            if args.secret_env
            else f"`{args.command}` takes no secret"
        )
        msg = (
            f"unexpected arguments{named}, values not shown: secrets are never taken from the "
            f"command line because argv leaks to shell history and `ps`; {where}"
        )
        raise UsageError(msg)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit code (0 ok, 1 check failed, 2 bad input).

    Examples
    --------
    >>> main(["derive", "--region", "not a region"])  # doctest: +SKIP
    2
    """
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
            f"the `{extra}` extra (pip install 'ses-smtp-rotator[{extra}]')"
        )
        return EXIT_USAGE
    except SesSmtpCredentialsError as err:
        # Input errors (UsageError, InvalidRegionError, InvalidSecretError...) are ValueErrors.
        usage = isinstance(err, ValueError)
        _console.err(f"{PROG}: {'error: ' if usage else ''}{err}")
        return EXIT_USAGE if usage else EXIT_FAILED
