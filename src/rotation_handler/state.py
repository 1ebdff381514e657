"""The secret's state as DescribeSecret answers it, and the names of its staging labels.

A value module: it reads nothing and imports nothing of the function's, so the gate, the staging
guard, the steps and the sweep all share one definition of what a secret's state is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from ses_smtp_rotator.contract import CURRENT, PENDING, PREVIOUS, STACK_NAME_TAG

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

__all__ = ["CURRENT", "PENDING", "PREVIOUS", "SecretState", "Verdict", "describe_answer"]

_RATE: Final = re.compile(r"rate\((\d+) (days?|hours?)\)")


class Verdict(StrEnum):
    """What the staging guard concluded for a step's token."""

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
    # DescribeSecret's DeletedDate: the secret is scheduled for deletion.
    deleted: bool = False

    @property
    def app(self) -> str:
        """The app: the CloudFormation stack that made the secret, else the secret's name."""
        return self.tags.get(STACK_NAME_TAG) or self.name

    def version_with(self, stage: str) -> str | None:
        """Return the id of the version that carries ``stage``, if any."""
        return next((vid for vid, stages in self.versions.items() if stage in stages), None)

    def staged(self) -> list[str]:
        """Return the ids of the versions that carry any staging label."""
        return [version for version, stages in self.versions.items() if stages]


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
        deleted=meta.get("DeletedDate") is not None,
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
