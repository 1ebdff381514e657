"""The ``export`` subcommand: the secret's SMTP credentials for non-Python consumers.

Formats: ``env`` (shell-quoted ``SMTP_*=`` lines), ``json``, and ``postfix`` (a ``sasl_passwd``
line). Without ``--output`` the credentials go to stdout, which is the point of the command. With
``--output`` the file is created with mode 0600 from its first byte (``os.open`` with ``0o600``,
in the target's directory) and moved over the target with :func:`os.replace`, so readers never
see a partial file and the password is never in a world-readable file, not even for a moment.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

from ses_smtp_rotator.credentials import SmtpCredentials, get_smtp_credentials
from ses_smtp_rotator.exceptions import UsageError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

PRIVATE_MODE: Final = 0o600


def _env(creds: SmtpCredentials) -> str:
    values = {
        "SMTP_HOST": creds.host,
        "SMTP_PORT": str(creds.port),
        "SMTP_USERNAME": creds.username,
        "SMTP_PASSWORD": creds.password,
        "SMTP_TLS_MODE": creds.tls.value,
    }
    return "".join(f"{name}={shlex.quote(value)}\n" for name, value in values.items())


def _json(creds: SmtpCredentials) -> str:
    value = {
        "host": creds.host,
        "port": creds.port,
        "username": creds.username,
        "password": creds.password,
        "region": creds.region,
        "tls_mode": creds.tls.value,
    }
    return json.dumps(value, indent=2) + "\n"


def _postfix(creds: SmtpCredentials) -> str:
    return f"[{creds.host}]:{creds.port} {creds.username}:{creds.password}\n"


FORMATS: Final[dict[str, Callable[[SmtpCredentials], str]]] = {
    "env": _env,
    "json": _json,
    "postfix": _postfix,
}


def configure(parser: argparse.ArgumentParser) -> None:
    """Add ``export``'s arguments (none of them is secret)."""
    parser.add_argument("--secret-id", required=True, help="name or ARN of the rotated secret")
    parser.add_argument(
        "--format",
        choices=sorted(FORMATS),
        default="env",
        help="env: SMTP_*= lines; json: an object; postfix: a sasl_passwd line (default: env)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="write to this file (mode 0600, replaced atomically) instead of stdout",
    )


def run(args: argparse.Namespace) -> int:
    """Read the secret (default AWS chain) and write its credentials in the chosen format.

    Raises
    ------
    SecretUnavailableError, CredentialsNotReadyError
        The secret cannot be read or was never rotated (exit code 1).
    InvalidSecretError
        The secret's value is malformed (exit code 2).
    UsageError
        The output file cannot be written (exit code 2).
    """
    # A one-shot command reads the current value, never a cache left by an earlier call.
    creds = get_smtp_credentials(args.secret_id, force_fetch=True)
    text = FORMATS[args.format](creds)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        write_private(args.output, text)
    except OSError as err:
        msg = f"cannot write {args.output}: {err.strerror or type(err).__name__}"
        raise UsageError(msg) from None
    sys.stderr.write(f"wrote {args.format} credentials to {args.output} (mode 0600)\n")
    return 0


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, readable by the owner only from the first byte on.

    Raises
    ------
    OSError
        The directory is not writable, ``path`` is a directory, the disk is full...
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(temporary, flags, PRIVATE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)  # atomic (os.replace) within one directory
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
