"""The ``check`` subcommand: one SMTP login, and on a 535 the likely cause.

Kept out of :mod:`ses_smtp_rotator.cli` so that module stays a small table of subcommands.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ses_smtp_rotator.diagnose import KeyInfo, diagnose
from ses_smtp_rotator.endpoints import TlsMode
from ses_smtp_rotator.exceptions import CheckFailedError, UsageError
from ses_smtp_rotator.secret import parse_secret
from ses_smtp_rotator.smtp import ProbeOutcome, ProbeResult, probe_login

if TYPE_CHECKING:
    import argparse

_CODE_INVALID = 535


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


def configure(parser: argparse.ArgumentParser) -> None:
    """Add ``check``'s arguments."""
    parser.add_argument("--secret-id", help="read everything from this Secrets Manager secret")
    parser.add_argument("--host", help="SMTP host, for example email-smtp.eu-west-1.amazonaws.com")
    parser.add_argument(
        "--port", type=int, help="SMTP port (587, 25, 2587 STARTTLS; 465, 2465 TLS)"
    )
    parser.add_argument("--username", help="SMTP user name: the access key id")
    parser.add_argument("--region", help="region the endpoint serves (default: from the host)")
    parser.add_argument("--tls", choices=[mode.value for mode in TlsMode], help="default: by port")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per network step")


def run(args: argparse.Namespace) -> int:
    """Log in once; print OK, or the failure and (for a 535) its likely cause.

    Raises
    ------
    CheckFailedError
        The login did not succeed (exit code 1).
    UsageError
        Missing or conflicting arguments, or an unreadable secret (exit code 2).
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
        _out(f"OK: {result.message} ({result.elapsed:.2f} s)")
        return 0
    _out(f"FAILED ({result.outcome}): {result.message}")
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
    _out(f"likely cause ({diagnosis.cause}): {diagnosis.message}")
    if note:
        _out(note)


def _target(args: argparse.Namespace) -> Target:
    if args.secret_id:
        if args.host or args.port or args.username:
            msg = "give either --secret-id or --host/--port/--username, not both"
            raise UsageError(msg)
        return _target_from_secret(args.secret_id, args.region)
    missing = [f"--{name}" for name in ("host", "port", "username") if not getattr(args, name)]
    if missing:
        msg = f"missing {', '.join(missing)} (or use --secret-id)"
        raise UsageError(msg)
    from ses_smtp_rotator.cli import read_secret  # noqa: PLC0415 - cli imports this module

    return Target(
        host=args.host,
        port=args.port,
        username=args.username,
        password=read_secret("SMTP_PASSWORD", "SMTP password"),
        tls=TlsMode(args.tls) if args.tls else None,
        region=args.region,
        secret_access_key=os.environ.get("SES_SECRET_ACCESS_KEY") or None,
    )


def _target_from_secret(secret_id: str, region: str | None) -> Target:
    import boto3  # noqa: PLC0415 - only --secret-id needs AWS
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - same

    client = boto3.client("secretsmanager")
    try:
        value = client.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")
    except ClientError as err:
        msg = f"cannot read secret {secret_id}: {err.response.get('Error', {}).get('Code')}"
        raise UsageError(msg) from None
    except BotoCoreError as err:
        msg = f"cannot read secret {secret_id}: {type(err).__name__}"
        raise UsageError(msg) from None
    secret = parse_secret(
        value.get("SecretString", ""), default_region=client.meta.region_name, secret_id=secret_id
    )
    if secret.access_key_id is None or secret.password is None:
        msg = f"secret {secret_id} holds no credentials yet (a bootstrap value): rotate it first"
        raise UsageError(msg)
    return Target(
        host=secret.host,
        port=secret.port,
        username=secret.access_key_id,
        password=secret.password,
        tls=secret.tls,
        region=region or secret.region,
        secret_access_key=secret.secret_access_key,
        iam_user_name=secret.iam_user_name,
    )


def lookup_key(target: Target) -> tuple[KeyInfo | None, str | None]:
    """Return the key's IAM status and age, or ``None`` and a note saying why it is unknown."""
    import boto3  # noqa: PLC0415 - only a 535 needs IAM
    from botocore.config import Config  # noqa: PLC0415 - same
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - same

    try:
        config = Config(connect_timeout=5, read_timeout=10, retries={"mode": "standard"})
        iam = boto3.client("iam", config=config)
        user = target.iam_user_name or iam.get_access_key_last_used(
            AccessKeyId=target.username
        ).get("UserName")
        if user:
            for key in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
                if key.get("AccessKeyId") == target.username:
                    return KeyInfo(target.username, key["Status"], key["CreateDate"]), None
    except ClientError as err:
        reason = str(err.response.get("Error", {}).get("Code"))
    except BotoCoreError as err:
        reason = type(err).__name__
    else:
        reason = "the key was not found in IAM"
    note = f"note: the key's age and status could not be checked in IAM ({reason})"
    return None, note


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
