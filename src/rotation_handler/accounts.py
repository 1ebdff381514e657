"""Which account a secret lives in, and the AWS clients that act on it there.

A secret of the function's own account (the account of the Lambda's ARN) is rotated with the
function's own clients. A secret of another account is rotated through a role in that account,
``arn:<partition>:iam::<account>:role/<CROSS_ACCOUNT_ROLE_NAME>``: the function assumes it (STS
AssumeRole, the session named after the function) and calls Secrets Manager and IAM with those
credentials. Without ``CROSS_ACCOUNT_ROLE_NAME`` such a secret is refused before any AWS call.

The assumed credentials are kept per account by the cold-start runtime and renewed shortly before
they expire, so a warm container assumes a member's role about once an hour, not once a step.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

import boto3
from botocore.exceptions import ClientError

from rotation_handler.exceptions import CrossAccountError
from rotation_handler.observability import count_throttles, logger

if TYPE_CHECKING:
    from collections.abc import Callable

    from botocore.config import Config
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sts import STSClient

    from rotation_handler.settings import Settings

_ARN_RE: Final = re.compile(r"^arn:(aws[a-z-]*):[a-z0-9-]+:[a-z0-9-]*:(\d{12}):")
_SESSION_NAME_BAD: Final = re.compile(r"[^A-Za-z0-9+=,.@_-]")
_MAX_SESSION_NAME: Final = 64
DEFAULT_SESSION_NAME: Final = "ses-smtp-rotation"
# An hour is what every role allows (MaxSessionDuration is at least 3600 s) and the most a
# Lambda's own role may ask for (assuming a role from a role session is role chaining, capped at
# one hour by STS). Credentials are renewed once less than 15 minutes are left: an invocation
# lasts 900 s at most, so credentials taken from the cache never expire in the middle of a step.
SESSION_SECONDS: Final = 3600
RENEW_BEFORE: Final = timedelta(minutes=15)


@dataclass(frozen=True, kw_only=True)
class Clients:
    """The Secrets Manager and IAM clients for one account."""

    sm: SecretsManagerClient
    iam: IAMClient
    # The member account these act in, or None for the function's own account.
    account: str | None = None
    expires: datetime | None = None


def account_of(arn: str) -> tuple[str, str] | None:
    """Return the partition and account of an ARN, or ``None`` for a name or a malformed ARN.

    Examples
    --------
    >>> account_of("arn:aws:secretsmanager:eu-west-1:111122223333:secret:smtp-AbCdEf")
    ('aws', '111122223333')
    >>> account_of("smtp") is None
    True
    """
    match = _ARN_RE.match(arn)
    return (match.group(1), match.group(2)) if match else None


def session_name(function_name: str | None) -> str:
    """Return the AssumeRole session name: the function's name, as STS allows it.

    Examples
    --------
    >>> session_name("ses-smtp-fleet")
    'ses-smtp-fleet'
    """
    name = _SESSION_NAME_BAD.sub("-", function_name or "")[:_MAX_SESSION_NAME]
    return name if len(name) >= 2 else DEFAULT_SESSION_NAME  # noqa: PLR2004 - STS's minimum


@dataclass(kw_only=True)
class AccountClients:
    """The function's own clients, and the assumed-role clients of each member account."""

    own: Clients
    settings: Settings
    # The function's own session: it builds the STS client, when a member account first needs it.
    session: boto3.session.Session
    config: Config
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _members: dict[str, Clients] = field(default_factory=dict, init=False)
    _own_account: str | None = field(default=None, init=False)
    _sts: STSClient | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def for_secret(
        self, secret_id: str, *, function_arn: str | None, function_name: str | None
    ) -> Clients:
        """Return the clients that act on ``secret_id``.

        Parameters
        ----------
        secret_id
            The event's SecretId; a name (not an ARN) is a secret of the function's account.
        function_arn
            The Lambda's ARN (``context.invoked_function_arn``): its account is the function's.
        function_name
            Names the assumed-role session, so the member's CloudTrail shows who acted.

        Raises
        ------
        CrossAccountError
            The secret is in another account and ``CROSS_ACCOUNT_ROLE_NAME`` is unset (no AWS call
            is made), or the role there could not be assumed (AccessDenied).
        """
        where = account_of(secret_id)
        if where is None:
            return self.own
        partition, account = where
        own = self._own(function_arn)
        if account == own:
            return self.own
        role_name = self.settings.cross_account_role_name
        if not role_name:
            msg = (
                f"secret {secret_id} is in account {account}, not in this function's account "
                f"{own}: set CROSS_ACCOUNT_ROLE_NAME to the role this function assumes there, or "
                f"rotate it with a function deployed in account {account}"
            )
            raise CrossAccountError(msg)
        with self._lock:
            cached = self._members.get(account)
            if cached is not None and self._fresh(cached):
                return cached
            role_arn = f"arn:{partition}:iam::{account}:role/{role_name}"
            clients = self._assume(role_arn, account=account, name=session_name(function_name))
            self._members[account] = clients
            return clients

    def _fresh(self, clients: Clients) -> bool:
        return clients.expires is not None and clients.expires - self.clock() > RENEW_BEFORE

    @property
    def sts(self) -> STSClient:
        """The function's STS client (built on first use: single-account runs never need it)."""
        if self._sts is None:
            self._sts = self.session.client("sts", config=self.config)
        return self._sts

    def _own(self, function_arn: str | None) -> str:
        where = account_of(function_arn or "")
        if where is not None:
            return where[1]
        if self._own_account is None:
            # Lambda always passes its ARN; a harness that does not is answered by STS once.
            self._own_account = self.sts.get_caller_identity()["Account"]
        return self._own_account

    def _assume(self, role_arn: str, *, account: str, name: str) -> Clients:
        try:
            answer = self.sts.assume_role(
                RoleArn=role_arn, RoleSessionName=name, DurationSeconds=SESSION_SECONDS
            )
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") != "AccessDenied":
                raise
            msg = (
                f"could not assume role {role_arn} (AccessDenied): deploy the member role in "
                f"account {account} (fleet/member-role.yaml) named as CROSS_ACCOUNT_ROLE_NAME "
                "says, trusting this function's execution role, and allow sts:AssumeRole on it "
                "in the function's policy; see docs/cross-account.md"
            )
            raise CrossAccountError(msg) from err
        credentials = answer["Credentials"]
        session = boto3.session.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=self.settings.region,
        )
        logger.info("assumed the member account's role", extra={"role_arn": role_arn})
        clients = Clients(
            sm=session.client("secretsmanager", config=self.config),
            iam=session.client("iam", config=self.config),
            account=account,
            expires=credentials["Expiration"],
        )
        count_throttles(clients.sm)
        count_throttles(clients.iam)
        return clients
