"""The ``check`` subcommand: one SMTP login, and on a 535 the likely cause.

Kept out of :mod:`ses_smtp_rotator.cli` so that module stays a small table of subcommands. With
``--secret-id`` everything comes from the secret, read by the same reader as the client helper's
(:func:`ses_smtp_rotator.credentials.read_secret`), so a never-rotated secret fails here exactly as
in ``export`` and in apps.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Final

from ses_smtp_rotator import _aws, _console
from ses_smtp_rotator.credentials import SmtpCredentials, read_secret
from ses_smtp_rotator.diagnose import KeyInfo, diagnose
from ses_smtp_rotator.endpoints import TlsMode
from ses_smtp_rotator.exceptions import CheckFailedError, RegionNotFoundError, UsageError
from ses_smtp_rotator.smtp import ProbeOutcome, ProbeResult, probe_login

_CODE_INVALID = 535
STAGES: Final = ("AWSCURRENT", "AWSPENDING", "AWSPREVIOUS")
_MAX_PORT: Final = 65535
_MAX_TIMEOUT: Final = 3600.0


@dataclass(frozen=True)
class Target:
    """Where and as whom to log in, and what is known for a diagnosis."""

    host: str
    port: int
    username: str
    password: str
    tls: TlsMode | None = None
    region: str | None = None
    secret_access_key: str | None = None
    iam_user_name: str | None = None

    def __repr__(self) -> str:
        return f"Target({self.host}:{self.port}, {self.username})"


def port(text: str) -> int:
    """Parse a TCP port: ASCII digits, 1 to 65535.

    Raises
    ------
    argparse.ArgumentTypeError
        Anything else (argparse turns it into a usage error, exit code 2).
    """
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= _MAX_PORT:
        msg = f"must be a TCP port from 1 to {_MAX_PORT}"
        raise argparse.ArgumentTypeError(msg)
    return int(text)


# A time-out: a finite number of seconds above 0, at most an hour.
seconds = _console.seconds_type(_MAX_TIMEOUT, "10")


def configure(parser: argparse.ArgumentParser) -> None:
    """Add ``check``'s arguments."""
    parser.add_argument("--secret-id", help="read everything from this Secrets Manager secret")
    parser.add_argument(
        "--version-stage",
        choices=STAGES,
        help="with --secret-id: the version to check (default AWSCURRENT; AWSPENDING for a "
        "rotation stuck in testSecret)",
    )
    parser.add_argument("--host", help="SMTP host, for example email-smtp.eu-west-1.amazonaws.com")
    parser.add_argument(
        "--port", type=port, help="SMTP port (587, 25, 2587 STARTTLS; 465, 2465 TLS)"
    )
    parser.add_argument("--username", help="SMTP user name: the access key id")
    parser.add_argument(
        "--region",
        help="with --secret-id: the secret's region (default: the secret ARN's, else the AWS "
        "chain's, else AWS_REGION; the SES region comes from the secret); without: the region "
        "the endpoint serves (default: from the host)",
    )
    parser.add_argument("--tls", choices=[mode.value for mode in TlsMode], help="default: by port")
    parser.add_argument(
        "--timeout", type=seconds, default=10.0, help="seconds per network step (default 10)"
    )


def run(args: argparse.Namespace) -> int:
    """Log in once; print OK, or the failure and (for a 535) its likely cause.

    Raises
    ------
    CheckFailedError
        The login did not succeed (exit code 1).
    SecretUnavailableError, CredentialsNotReadyError
        ``--secret-id``: the secret cannot be read, or holds no credentials yet (exit code 1).
    UsageError, InvalidSecretError
        Missing or conflicting arguments, or a malformed secret (exit code 2).
    """
    target = _target(args)
    result = probe_login(
        host=target.host,
        port=target.port,
        username=target.username,
        password=target.password,
        tls=target.tls,
        timeout=args.timeout,
    )
    if result.ok:
        _console.out(f"OK: {result.message} ({result.elapsed:.2f} s)")
        return _console.EXIT_OK
    _console.out(f"FAILED ({result.outcome}): {result.message}")
    if result.outcome is ProbeOutcome.AUTH_REJECTED and result.code == _CODE_INVALID:
        _explain_535(target, result)
    msg = f"SMTP login to {target.host}:{target.port} failed ({result.outcome})"
    raise CheckFailedError(msg)


def _explain_535(target: Target, _result: ProbeResult) -> None:
    key_info, note = lookup_key(target)
    diagnosis = diagnose(
        host=target.host,
        username=target.username,
        password=target.password,
        secret_access_key=target.secret_access_key,
        key_info=key_info,
        region=target.region,
    )
    _console.out(f"likely cause ({diagnosis.cause}): {diagnosis.message}")
    if note:
        _console.out(note)


def _target(args: argparse.Namespace) -> Target:
    if args.secret_id:
        if args.host or args.port or args.username:
            msg = "give either --secret-id or --host/--port/--username, not both"
            raise UsageError(msg)
        return _target_from_secret(args.secret_id, args.version_stage, args.region)
    if args.version_stage:
        msg = "--version-stage reads a version of the secret: give --secret-id too"
        raise UsageError(msg)
    missing = [f"--{name}" for name in ("host", "port", "username") if not getattr(args, name)]
    if missing:
        msg = f"missing {', '.join(missing)} (or use --secret-id)"
        raise UsageError(msg)
    return Target(
        host=args.host,
        port=args.port,
        username=args.username,
        password=_console.read_secret(_console.SMTP_PASSWORD_ENV, "SMTP password"),
        tls=TlsMode(args.tls) if args.tls else None,
        region=args.region,
        secret_access_key=_console.optional_secret(_console.SECRET_ACCESS_KEY_ENV),
    )


def _target_from_secret(secret_id: str, stage: str | None, region: str | None) -> Target:
    client = _aws.secrets_client(region, secret_id)
    secret = read_secret(secret_id, version_stage=stage or "AWSCURRENT", client=client)
    credentials = SmtpCredentials.of(secret, secret_id)
    return Target(
        host=credentials.host,
        port=credentials.port,
        username=credentials.username,
        password=credentials.password,
        tls=secret.tls,
        region=secret.region,
        secret_access_key=secret.secret_access_key,
        iam_user_name=secret.iam_user_name,
    )


def lookup_key(target: Target) -> tuple[KeyInfo | None, str | None]:
    """Return the key's IAM status and age, or ``None`` and a note saying why it is unknown."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - only a 535

    try:
        # IAM is global: the SES region signs as well as any, and needs no configured region.
        iam = _aws.client("iam", region=target.region or None)
        user = target.iam_user_name or iam.get_access_key_last_used(
            AccessKeyId=target.username
        ).get("UserName")
        if user:
            for key in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
                if key.get("AccessKeyId") == target.username:
                    return KeyInfo(target.username, key["Status"], key["CreateDate"]), None
    except (ClientError, BotoCoreError, RegionNotFoundError) as err:
        reason = _aws.error_code(err)
    else:
        reason = "the key was not found in IAM"
    note = f"note: the key's age and status could not be checked in IAM ({reason})"
    return None, note
