"""How ``status`` shows what it found: text for people, one JSON object for scripts.

Key ids are masked (``AKIA…WXYZ``) unless asked for; a fix command that needs a masked key id shows
it as a ``<placeholder>`` so that it cannot run against the wrong key by accident.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ses_smtp_rotator._status_model import Key, Problem, Report, Version

_EDGE: Final = 4  # characters of a key id kept at each end when masked
SCHEMA_VERSION: Final = 1


def mask(key_id: str) -> str:
    """Return ``key_id`` with only its first and last four characters.

    Examples
    --------
    >>> mask("AKIAIOSFODNN7EXAMPLE")
    'AKIA…MPLE'
    """
    if len(key_id) <= 2 * _EDGE:
        return "…"
    return f"{key_id[:_EDGE]}…{key_id[-_EDGE:]}"


def when(moment: datetime | None) -> str | None:
    """Return ``moment`` in ISO 8601, UTC, to the second (``None`` stays ``None``)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def ago(moment: datetime | None, now: datetime) -> str:
    """Return ``moment`` and how long ago it was, for people (``never`` for ``None``)."""
    if moment is None:
        return "never"
    seconds = max(0, int((now - moment).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    span = f"{days}d {hours}h" if days else f"{hours}h {minutes}m" if hours else f"{minutes}m"
    return f"{when(moment)} ({span} ago)"


def shown_problem(problem: Problem, *, show_key_ids: bool) -> dict[str, Any]:
    """Return a problem's message and fix commands with its key id shown or masked."""
    key = problem.key_id
    shown = (key if show_key_ids else mask(key)) if key is not None else ""
    in_command = shown if show_key_ids else f"<{shown}>"
    return {
        "code": problem.code,
        "message": problem.message.replace("{key}", shown),
        "access_key_id": shown or None,
        "fix": [command.replace("{key}", in_command) for command in problem.fix],
    }


@dataclass(frozen=True)
class View:
    """A report as the output shows it (masked or not)."""

    report: Report
    show_key_ids: bool = False
    now: datetime | None = None

    def key(self, key_id: str | None) -> str | None:
        """Return ``key_id`` as shown."""
        if key_id is None:
            return None
        return key_id if self.show_key_ids else mask(key_id)

    def problem(self, problem: Problem) -> dict[str, Any]:
        """Return a problem's message and fix commands with its key id shown or masked."""
        return shown_problem(problem, show_key_ids=self.show_key_ids)

    def _version(self, version: Version) -> dict[str, Any]:
        return {
            "version_id": version.version_id,
            "stages": version.stages,
            "created": when(version.created),
            "holds": version.holds,
            "access_key_id": self.key(version.access_key_id),
            "note": version.note,
        }

    def _key(self, key: Key) -> dict[str, Any]:
        return {
            "access_key_id": self.key(key.access_key_id),
            "status": key.status,
            "created": when(key.created),
            "held_by": key.held_by,
            "held_by_no_version": not key.held_by and not key.new_in_rotation,
            "new_in_rotation": key.new_in_rotation,
            "grace_period_since": when(key.grace_period_since),
            "last_used": key.last_used,
        }

    def as_json(self) -> dict[str, Any]:
        """Return the whole report as one JSON-ready object (schema in docs/cli.md)."""
        r = self.report
        return {
            "schema": SCHEMA_VERSION,
            "secret": {"arn": r.arn, "name": r.name},
            "healthy": not r.problems,
            "rotation": {
                "enabled": r.enabled,
                "schedule": {
                    "automatically_after_days": r.schedule.get("AutomaticallyAfterDays"),
                    "schedule_expression": r.schedule.get("ScheduleExpression"),
                    "duration": r.schedule.get("Duration"),
                },
                "last_rotated": when(r.last_rotated),
                "next_rotation": when(r.next_rotation),
                "state": r.state,
                "pending_version": r.pending_version,
                "pending_since": when(r.pending_since),
            },
            "versions": [self._version(v) for v in r.versions],
            "iam_user": r.iam_user,
            "keys": [self._key(k) for k in r.keys],
            "problems": [self.problem(p) for p in r.problems],
        }

    def as_text(self) -> str:
        """Return the report for people: a few aligned sections, problems and fixes last."""
        r = self.report
        now = self.now or datetime.now(UTC)
        rules = r.schedule
        every = (
            rules.get("ScheduleExpression")
            or (
                f"every {rules['AutomaticallyAfterDays']} days"
                if "AutomaticallyAfterDays" in rules
                else None
            )
            or "no schedule"
        )
        window = f", window {rules['Duration']}" if rules.get("Duration") else ""
        lines = [
            f"secret         {r.arn}",
            f"rotation       {'enabled' if r.enabled else 'DISABLED'}, {every}{window}",
            f"last rotated   {ago(r.last_rotated, now)}",
            f"next rotation  {when(r.next_rotation) or 'unknown'}",
            f"state          {self._state(now)}",
            "",
            "versions",
        ]
        unread = [v for v in r.versions if v.holds == "unread"]
        for v in r.versions:
            if v.holds == "unread":
                continue
            holds = f"key {self.key(v.access_key_id)}" if v.access_key_id else v.holds
            note = f" ({v.note})" if v.note else ""
            labels = "+".join(v.stages) or "(no label)"
            lines.append(f"  {v.version_id}  {labels:<22} created {when(v.created)}  {holds}{note}")
        if unread:
            lines.append(f"  ({len(unread)} more without labels, not needed to place a key)")
        lines += ["", f"access keys of IAM user {r.iam_user or '(unknown)'}"]
        lines += [f"  {self._key_line(k, now)}" for k in r.keys] or [
            "  (none)" if r.iam_user else "  (not read: no version names the user)"
        ]
        lines.append("")
        if not r.problems:
            lines.append("healthy: no problem found")
            return "\n".join(lines)
        lines.append(f"{len(r.problems)} problem(s) found")
        for number, problem in enumerate(r.problems, 1):
            shown = self.problem(problem)
            lines.append(f"  {number}. {shown['code']}: {shown['message']}")
            lines += [f"       $ {command}" for command in shown["fix"]]
        if any("{key}" in c for p in r.problems for c in p.fix) and not self.show_key_ids:
            lines.append(
                "key ids are masked: run with --show-key-ids to print the commands in full"
            )
        return "\n".join(lines)

    def _state(self, now: datetime) -> str:
        r = self.report
        if r.state == "idle":
            return "no rotation in progress"
        label = "STUCK" if r.state == "stuck" else "rotation in progress"
        return f"{label} since {ago(r.pending_since, now)} (AWSPENDING on {r.pending_version})"

    def _key_line(self, key: Key, now: datetime) -> str:
        if key.held_by:
            held = "held by " + ", ".join(
                f"{'+'.join(h['stages']) or 'an unlabelled version'} ({h['version_id']})"
                for h in key.held_by
            )
        elif key.new_in_rotation:
            held = "new key of the rotation in progress (not stored yet)"
        else:
            held = "HELD BY NO VERSION"
        grace = (
            f"; in grace period since {when(key.grace_period_since)}"
            if key.grace_period_since
            else ""
        )
        used = key.last_used or {}
        last = (
            f"last used {used['date']} ({used.get('service')}, {used.get('region')})"
            if used.get("date")
            else "never used"
            if key.last_used is not None
            else "last use unknown"
        )
        return (
            f"{self.key(key.access_key_id)}  {key.status:<8} created {ago(key.created, now)}  "
            f"{held}{grace}; {last}"
        )
