"""The ``export`` subcommand: the secret's SMTP credentials for non-Python consumers.

Formats: ``env`` (shell-quoted ``SMTP_*=`` lines), ``json``, and ``postfix`` (a ``sasl_passwd``
line). Without ``--output`` (or with ``--output -``) the credentials go to stdout, which is the
point of the command. With ``--output FILE`` a temporary file is created with mode 0600 from its
first byte (``os.open`` with ``0o600``, in the target's directory), given the owner, group and mode
of the file it replaces (the mode never wider than 0640), and moved over the target with
:func:`os.replace`: readers never see a partial file, the password is never in a world-readable
file, and a daemon that reads the file through its group (postfix) still can after the export.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

from ses_smtp_rotator import _aws, _console
from ses_smtp_rotator.credentials import SmtpCredentials, read_secret
from ses_smtp_rotator.exceptions import UsageError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

PRIVATE_MODE: Final = 0o600
# The widest mode an exported file keeps: its owner reads and writes, its group reads, no one else.
WIDEST_MODE: Final = 0o640
STDOUT: Final = "-"


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
    _console.add_region(parser)
    parser.add_argument(
        "--format",
        choices=sorted(FORMATS),
        default="env",
        help="env: SMTP_*= lines; json: an object; postfix: a sasl_passwd line (default: env)",
    )
    parser.add_argument(
        "--output",
        default=STDOUT,
        help="write to this file instead of stdout (`-`): replaced atomically, new files 0600, "
        "an existing file keeps its owner, group and mode (at most 0640)",
    )


def run(args: argparse.Namespace) -> int:
    """Read the secret (default AWS chain) and write its credentials in the chosen format.

    Raises
    ------
    SecretUnavailableError, CredentialsNotReadyError
        The secret cannot be read or was never rotated (exit code 1).
    InvalidSecretError
        The secret's value is malformed (exit code 2).
    UsageError, RegionNotFoundError
        The output file cannot be written, or its owner or group cannot be kept; no region
        (exit code 2).
    """
    # A one-shot command reads the current value (no cache), with the client helper's reader.
    client = _aws.secrets_client(args.region, args.secret_id)
    creds = SmtpCredentials.of(read_secret(args.secret_id, client=client), args.secret_id)
    text = FORMATS[args.format](creds)
    if args.output == STDOUT:
        sys.stdout.write(text)
        return 0
    output = Path(args.output)
    try:
        mode = write_private(output, text)
    except OSError as err:
        msg = f"cannot write {output}: {err.strerror or type(err).__name__}; it is unchanged"
        raise UsageError(msg) from None
    sys.stderr.write(f"wrote {args.format} credentials to {output} (mode {mode:04o})\n")
    return 0


def write_private(path: Path, text: str) -> int:
    """Replace ``path`` with ``text``, never readable by more than it was, nor by others.

    A new file is readable by its owner only (0600). An existing regular file keeps its owner,
    group and mode, less any permission beyond 0640 (so ``root:postfix 0640`` stays that). The
    content is in a temporary file of mode 0600 until it has its final owner and mode.

    Returns
    -------
    int
        The mode the file now has.

    Raises
    ------
    OSError
        The directory is not writable, ``path`` is a directory, the disk is full, or the
        existing owner or group cannot be given to the new file (then ``path`` is unchanged).
    """
    try:
        existing = path.stat(follow_symlinks=False)
    except FileNotFoundError:
        existing = None
    keep = existing is not None and stat.S_ISREG(existing.st_mode)
    mode = stat.S_IMODE(existing.st_mode) & WIDEST_MODE if existing and keep else PRIVATE_MODE
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(temporary, flags, PRIVATE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
            if existing is not None and keep:
                _take_ownership(handle.fileno(), existing)
            os.fchmod(handle.fileno(), mode)
        temporary.replace(path)  # atomic (os.replace) within one directory
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    return mode


def read_or_none(path: Path) -> str | None:
    """Return the file's text, or ``None`` when it is missing or unreadable (written anew)."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None  # missing or unreadable: written anew


def touch_private(path: Path) -> None:
    """Create ``path`` if missing, 0600 and never through a symbolic link."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    os.close(fd)


def cannot_write(path: Path, err: OSError) -> str:
    """Say why ``path`` could not be written, without the error's whole text."""
    return f"cannot write {path}: {err.strerror or type(err).__name__}; it is unchanged"


def _take_ownership(fd: int, existing: os.stat_result) -> None:
    """Give the open file ``existing``'s owner and group (root can; others only their own)."""
    current = os.fstat(fd)
    if (current.st_uid, current.st_gid) != (existing.st_uid, existing.st_gid):
        os.fchown(fd, existing.st_uid, existing.st_gid)
