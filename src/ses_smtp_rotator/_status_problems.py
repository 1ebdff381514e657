"""The problems ``status`` looks for, and the runbook's commands that fix each one.

Each ``judge_*`` function reads a :class:`~ses_smtp_rotator._status_model.Report` and appends a
:class:`Problem` for each thing that needs a person. Messages and fixes write ``{key}`` where a
key id goes: the output shows it in full or masked (:mod:`ses_smtp_rotator._status_render`).
"""

from __future__ import annotations

import re
import shlex
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

from ses_smtp_rotator._status_model import CURRENT, PENDING, PREVIOUS, Problem

if TYPE_CHECKING:
    from datetime import datetime

    from ses_smtp_rotator._status_model import Report, Version

# An empty pending version is normal while createSecret runs; a Lambda run lasts 900 s at most,
# so one still empty after that means createSecret failed (or never ran).
EMPTY_PENDING_LIMIT: Final = timedelta(seconds=900)
# Without a Duration, Secrets Manager closes the rotation window after an hour for schedules in
# hours and at the end of the UTC day otherwise: a day is the bound here.
DEFAULT_WINDOW: Final = timedelta(hours=24)
HOURLY_WINDOW: Final = timedelta(hours=1)


def _window(rules: dict[str, Any]) -> timedelta:
    """How long a rotation may stay pending under ``rules`` (its rotation window)."""
    duration = re.fullmatch(r"(\d+)h", str(rules.get("Duration", "")))
    if duration:
        return timedelta(hours=int(duration.group(1)))
    if re.search(r"rate\(\d+ hours?\)", str(rules.get("ScheduleExpression", ""))):
        return HOURLY_WINDOW
    return DEFAULT_WINDOW


def _labelled(report: Report, stage: str) -> Version | None:
    return next((v for v in report.versions if stage in v.stages), None)


def _cmd(*words: str) -> str:
    return " ".join(shlex.quote(word) if not word.startswith("<") else word for word in words)


def rotate_fix(report: Report) -> str:
    """Return the runbook's "rotate now" command for this secret."""
    return _cmd("aws", "secretsmanager", "rotate-secret", "--secret-id", report.arn)


def judge_rotation(report: Report, *, now: datetime) -> None:
    pending = _labelled(report, PENDING)
    if not report.enabled:
        message = "rotation is turned off (cancelled, or never turned on): the key never changes"
        report.problems.append(Problem("rotation-off", message, (rotate_fix(report),)))
    if pending is None or CURRENT in pending.stages:
        return
    report.state, report.pending_version = "in-progress", pending.version_id
    report.pending_since = pending.created
    age = now - pending.created if pending.created else timedelta(0)
    window = _window(report.schedule)
    if pending.holds == "no-value" and age > EMPTY_PENDING_LIMIT:
        why = "its pending version is still empty: createSecret failed or never ran"
    elif pending.holds in {"invalid", "unreadable"}:
        why = f"its pending version {pending.note}"
    elif age > window:
        why = f"it has been pending longer than its rotation window ({_hours(window)})"
    else:
        return
    report.state = "stuck"
    arn = report.arn
    fix = (
        _cmd("aws", "secretsmanager", "cancel-rotate-secret", "--secret-id", arn),
        _cmd("aws", "secretsmanager", "update-secret-version-stage", "--secret-id", arn)
        + f" --version-stage {PENDING} --remove-from-version-id {pending.version_id}",
        rotate_fix(report),
    )
    message = f"rotation stuck: {why}; start it over (the function's log names the cause)"
    report.problems.append(Problem("rotation-stuck", message, fix))


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:g} h"


def judge_current(report: Report) -> None:
    current = _labelled(report, CURRENT)
    if current is None:
        message = "no version is AWSCURRENT: apps cannot read credentials"
        report.problems.append(Problem("no-current", message, (rotate_fix(report),)))
    elif current.holds == "bootstrap" and report.state != "in-progress":
        previous = _labelled(report, PREVIOUS)
        if previous is not None and previous.holds == "credentials":
            message = (
                "AWSCURRENT holds the bootstrap value written over it by a stack update; the "
                "working key is AWSPREVIOUS's: rotate now so apps read credentials again"
            )
            report.problems.append(
                Problem("bootstrap-over-current", message, (rotate_fix(report),))
            )
        elif report.state != "stuck":
            message = "never rotated: AWSCURRENT holds the bootstrap value, no credentials yet"
            report.problems.append(Problem("never-rotated", message, (rotate_fix(report),)))
    elif current.holds == "unreadable":
        message = (
            f"AWSCURRENT {current.note}: status needs secretsmanager:GetSecretValue on the "
            "secret (and kms:Decrypt on its key) to tell which key it holds"
        )
        report.problems.append(Problem("current-unreadable", message))
    elif current.holds in {"invalid", "no-value"}:
        message = (
            f"AWSCURRENT {current.note}: apps cannot read credentials; put a value in the "
            "schema of docs/configuration.md as AWSCURRENT (runbook: adopt an existing key), "
            "then rotate"
        )
        report.problems.append(Problem("current-unusable", message))


def judge_keys(report: Report, *, now: datetime) -> None:
    user = report.iam_user or "<user>"
    current = _labelled(report, CURRENT)
    current_key = current.access_key_id if current else None
    pending = _labelled(report, PENDING)
    for key in report.keys:
        if key.access_key_id == current_key and key.status != "Active":
            message = f"AWSCURRENT's key {{key}} is {key.status}: apps get 535"
            fix = _cmd("aws", "iam", "update-access-key", "--user-name", user, "--access-key-id")
            fixes = (f"{fix} {{key}} --status Active",)
            report.problems.append(
                Problem("current-key-inactive", message, fixes, key.access_key_id)
            )
        if key.held_by:
            continue
        made_since = pending.created if pending is not None else None
        if (
            report.state == "in-progress"
            and pending is not None
            and pending.holds == "no-value"
            and made_since is not None
            and key.created is not None
            and key.created >= made_since - timedelta(minutes=1)
            and now - made_since <= EMPTY_PENDING_LIMIT
        ):
            key.new_in_rotation = True  # createSecret made it and has not stored it yet
            continue
        message = (
            "key {key} is held by no version (made by hand, or left by a failed run): "
            "if its last use (above) shows nothing needs it, delete it; or adopt it (runbook)"
        )
        fix = _cmd("aws", "iam", "delete-access-key", "--user-name", user, "--access-key-id")
        report.problems.append(
            Problem("unheld-key", message, (f"{fix} {{key}}",), key.access_key_id)
        )
    if current_key and current_key not in {key.access_key_id for key in report.keys}:
        message = "AWSCURRENT's key {key} no longer exists in IAM: apps get 535"
        report.problems.append(
            Problem("current-key-missing", message, (rotate_fix(report),), current_key)
        )
