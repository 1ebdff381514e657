"""The staging-label guard that runs before every step.

It reads the secret's metadata once (DescribeSecret) and decides whether the step may run:
rotation must be enabled, the token must be a version of this secret, the secret must be the one
the function is bound to, and the token must carry AWSPENDING. A token that is already
AWSCURRENT means the rotation already finished.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from rotation_handler import fleet
from rotation_handler.exceptions import (
    NotBoundError,
    RotationNotEnabledError,
    StagingError,
)

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from mypy_boto3_secretsmanager import SecretsManagerClient

    from rotation_handler.settings import Settings

_RATE: Final = re.compile(r"rate\((\d+) (days?|hours?)\)")
CURRENT: Final = "AWSCURRENT"
PENDING: Final = "AWSPENDING"
PREVIOUS: Final = "AWSPREVIOUS"


class Verdict(StrEnum):
    """What the guard concluded for this token."""

    PROCEED = "proceed"
    ALREADY_CURRENT = "already-current"


@dataclass(frozen=True, kw_only=True)
class SecretState:
    """The secret's metadata as DescribeSecret returned it."""

    arn: str
    name: str
    rotation_enabled: bool
    versions: Mapping[str, tuple[str, ...]]
    # Seconds between scheduled rotations, when the rotation rules say (None for cron()).
    rotation_interval: int | None = None
    # When the secret last rotated successfully, or None if it never did (DescribeSecret's
    # LastRotatedDate), and when it was created.
    last_rotated: datetime | None = None
    created: datetime | None = None
    # The secret's tags (fleet mode rotates only secrets carrying the fleet's tag).
    tags: Mapping[str, str] = field(default_factory=dict)

    def version_with(self, stage: str) -> str | None:
        """Return the id of the version that carries ``stage``, if any."""
        return next((vid for vid, stages in self.versions.items() if stage in stages), None)


def describe(
    sm: SecretsManagerClient, secret_id: str, settings: Settings | None = None
) -> SecretState:
    """Read the secret's metadata.

    Raises
    ------
    StagingError
        The secret does not exist (or is scheduled for deletion).
    NotInFleetError
        Fleet mode (``settings``), and Secrets Manager denied the read: the fleet's policy
        reaches only secrets carrying the fleet's tag.
    """
    try:
        meta = sm.describe_secret(SecretId=secret_id)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            msg = f"secret {secret_id} does not exist: check the SecretId of the rotation"
            raise StagingError(msg) from err
        fleet.refuse_denied_secret(err, secret_id, settings)
        raise
    return describe_answer(meta)


def describe_answer(meta: Mapping[str, Any]) -> SecretState:
    """Return the state a DescribeSecret answer gives."""
    return SecretState(
        arn=meta["ARN"],
        name=meta["Name"],
        rotation_enabled=bool(meta.get("RotationEnabled")),
        versions={vid: tuple(stages) for vid, stages in meta.get("VersionIdsToStages", {}).items()},
        rotation_interval=_interval(meta.get("RotationRules", {})),
        last_rotated=meta.get("LastRotatedDate"),
        created=meta.get("CreatedDate"),
        tags={tag["Key"]: tag.get("Value", "") for tag in meta.get("Tags", []) if "Key" in tag},
    )


def _interval(rules: Mapping[str, Any]) -> int | None:
    """Return the seconds between rotations that ``RotationRules`` give, if they say."""
    days = rules.get("AutomaticallyAfterDays")
    if isinstance(days, int) and days > 0:
        return days * 86400
    match = _RATE.fullmatch(str(rules.get("ScheduleExpression", "")).strip())
    if match is None:
        return None
    return int(match.group(1)) * (86400 if match.group(2).startswith("day") else 3600)


def check(
    sm: SecretsManagerClient, *, secret_id: str, token: str, settings: Settings
) -> tuple[SecretState, Verdict]:
    """Run the guard for one step and return the secret's state with the verdict.

    Raises
    ------
    NotBoundError
        ``SECRET_ARN`` is set and the event names another secret, or (fleet mode,
        :class:`~rotation_handler.exceptions.NotInFleetError`) the secret lacks the fleet's tag.
    RotationNotEnabledError
        Rotation is not enabled on the secret.
    StagingError
        The token is not a version of the secret, it is neither AWSCURRENT nor AWSPENDING, or it
        is AWSPREVIOUS (rolled back).
    """
    state = describe(sm, secret_id, settings)
    if settings.secret_arn and settings.secret_arn not in (state.arn, secret_id):
        msg = (
            f"this function is bound to secret {settings.secret_arn} (SECRET_ARN) and refuses "
            f"to rotate {state.arn}: deploy one rotation function per secret"
        )
        raise NotBoundError(msg)
    fleet.check_secret(state, settings)
    if not state.rotation_enabled:
        msg = f"rotation is not enabled on secret {state.arn}: enable it with RotateSecret"
        raise RotationNotEnabledError(msg)
    stages = state.versions.get(token)
    if stages is None:
        msg = (
            f"version {token} is not a version of secret {state.arn}: Secrets Manager passes "
            "the token of the version it staged as AWSPENDING"
        )
        raise StagingError(msg)
    if CURRENT in stages:
        return state, Verdict.ALREADY_CURRENT
    if PREVIOUS in stages:
        # A roll-back moved AWSCURRENT away from this version; promoting it again would retire
        # the key just restored. AWSPENDING may have stayed on it after its rotation succeeded.
        msg = (
            f"version {token} of secret {state.arn} is AWSPREVIOUS (it was rolled back): it is "
            "not promoted again. Take AWSPENDING off it (aws secretsmanager "
            "update-secret-version-stage --version-stage AWSPENDING --remove-from-version-id "
            f"{token}) and start a new rotation"
        )
        raise StagingError(msg)
    if PENDING not in stages:
        msg = (
            f"version {token} of secret {state.arn} is not AWSPENDING: another rotation may "
            "have replaced it; start a new rotation"
        )
        raise StagingError(msg)
    return state, Verdict.PROCEED
