"""What ``status`` finds, as data: the types its three modules share.

:mod:`ses_smtp_rotator._status` reads AWS, :mod:`~ses_smtp_rotator._status_problems` judges and
:mod:`~ses_smtp_rotator._status_render` shows.

This module sits below the three and imports none of them, so that they form no import circle
(not even one closed by a ``TYPE_CHECKING`` import).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

__all__ = ["CURRENT", "PENDING", "PREVIOUS", "Key", "Problem", "Report", "Version"]

CURRENT, PENDING, PREVIOUS = "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"


@dataclass(frozen=True)
class Problem:
    """Something that needs a person, with the commands (or the words) that fix it."""

    code: str
    message: str  # "{key}" stands for key_id, masked or not as the output asks
    fix: tuple[str, ...] = ()  # commands; "{key}" as in message
    key_id: str | None = None


@dataclass
class Version:
    """One version of the secret: labels, age and what it holds (never the value itself)."""

    version_id: str
    stages: list[str]
    created: datetime | None
    holds: str = "unread"  # credentials, bootstrap, no-value, invalid, unreadable, unread
    access_key_id: str | None = None
    note: str | None = None
    iam_user: str | None = None  # the user it names (not a secret)


@dataclass
class Key:
    """One access key of the user: IAM's view, and which version holds it."""

    access_key_id: str
    status: str
    created: datetime | None
    held_by: list[dict[str, Any]] = field(default_factory=list)  # version_id, stages
    grace_period_since: datetime | None = None
    last_used: dict[str, str | None] | None = None
    new_in_rotation: bool = False


@dataclass
class Report:
    """Everything ``status`` found about one secret."""

    arn: str
    name: str
    enabled: bool
    schedule: dict[str, Any]
    last_rotated: datetime | None
    next_rotation: datetime | None
    versions: list[Version]
    state: str = "idle"  # idle, in-progress, stuck
    pending_version: str | None = None
    pending_since: datetime | None = None
    iam_user: str | None = None
    keys: list[Key] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
