"""What one invocation of a step knows: its clients, settings, the secret's state, a deadline.

A value, below both the steps and the key lifecycle: it reads nothing itself. The secret's versions
are read through :attr:`StepContext.versions` (a :class:`rotation_handler.versions.Versions`); the
users the gate admitted during the invocation are kept in :attr:`StepContext.users`, so each is
read at most once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from rotation_handler.state import CURRENT, PREVIOUS

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_iam import IAMClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from rotation_handler.records import User
    from rotation_handler.settings import Settings
    from rotation_handler.state import SecretState, Verdict
    from ses_smtp_rotator.secret import SmtpSecret


@dataclass(frozen=True, kw_only=True)
class LabelledVersions:
    """The labelled versions createSecret reads: AWSCURRENT, AWSPREVIOUS and the live one."""

    current: SmtpSecret
    previous: SmtpSecret | None

    @property
    def live(self) -> SmtpSecret | None:
        """The version readers use: AWSCURRENT, or AWSPREVIOUS while AWSCURRENT is a bootstrap."""
        if self.current.has_credentials:
            return self.current
        previous = self.previous
        same_user = previous is not None and previous.iam_user_name == self.current.iam_user_name
        return previous if same_user and previous and previous.has_credentials else None

    def holder(self, access_key_id: str) -> str | None:
        """Return the stage of the labelled version that holds a key, if one does."""
        if access_key_id == self.current.access_key_id:
            return CURRENT
        if self.previous is not None and access_key_id == self.previous.access_key_id:
            return PREVIOUS
        return None


class VersionReader(Protocol):
    """How a step reads the secret's versions (see :class:`rotation_handler.versions.Versions`)."""

    def read(self, stage: str, *, version_id: str | None = None) -> SmtpSecret | None:
        """Read the version carrying ``stage`` (``None`` when it has no value yet)."""

    def read_labelled(self, stage: str) -> SmtpSecret | None:
        """Read a version whose damage must not stop the step (it only names a key)."""

    def read_pending(self, token: str) -> SmtpSecret:
        """Read the token's AWSPENDING version, which must hold credentials."""


@dataclass(frozen=True, kw_only=True)
class StepContext:
    """Everything a step needs: clients, settings, the guard's view of the secret, a deadline."""

    sm: SecretsManagerClient
    iam: IAMClient
    settings: Settings
    state: SecretState
    token: str
    verdict: Verdict
    seconds_left: Callable[[], float]
    versions: VersionReader
    # The users this invocation read through the gate (one GetUser each).
    users: dict[str, User] = field(default_factory=dict)
    # The event's RotationToken: PutSecretValue carries it (never logged, never in a repr).
    rotation_token: str | None = field(default=None, repr=False)
