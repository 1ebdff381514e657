"""How ``status --fleet`` shows a fleet: one line per app for people, one JSON object for scripts.

Each unhealthy app's line names its first problem and the runbook's command that fixes it (the
commands of a fix joined by ``&&``, in the order they run); an app with more problems, or a
problem without a command, points at ``status --secret-id`` for the rest. Key ids are masked as
``status`` masks them (:class:`ses_smtp_rotator._status_render.View`).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ses_smtp_rotator._status_render import View, shown_problem

if TYPE_CHECKING:
    from ses_smtp_rotator._status_fleet_model import Checked
    from ses_smtp_rotator._status_model import Problem
    from ses_smtp_rotator._status_trail import Notices

SCHEMA_VERSION: Final = 1
PROG: Final = "ses-smtp-rotator"


def details(checked: Checked) -> str:
    """Return the command that shows one app in full (its secret's ``status``)."""
    return f"{PROG} status --secret-id {shlex.quote(checked.app.arn)}"


@dataclass(frozen=True, kw_only=True)
class Fleet:
    """Every app ``status --fleet`` checked, as the output shows it."""

    name: str
    tag_key: str
    regions: list[str]
    checked: list[Checked]
    show_key_ids: bool = False
    # Whether rotation notices can arrive, one answer per region (never changes the exit code).
    notices: list[Notices] = field(default_factory=list)

    @property
    def unhealthy(self) -> list[Checked]:
        """The apps with a problem."""
        return [c for c in self.checked if not c.healthy]

    @property
    def healthy(self) -> bool:
        """Whether there are apps and none has a problem (no app at all is not healthy)."""
        return bool(self.checked) and not self.unhealthy

    def _problem(self, problem: Problem) -> dict[str, Any]:
        # A problem is shown alone: an unreadable app has no report.
        return shown_problem(problem, show_key_ids=self.show_key_ids)

    def fix(self, checked: Checked) -> str:
        """Return the one command line to type for the app's first problem."""
        first = self._problem(checked.problems[0])
        fix = " && ".join(first["fix"]) or details(checked)
        if len(checked.problems) > 1:
            more = len(checked.problems) - 1
            fix += f"  (+{more} more problem{'s' if more > 1 else ''}: {details(checked)})"
        return fix

    def as_text(self) -> str:
        """Return the header, then one line per app: unhealthy ones first."""
        width = max((len(c.app.name) for c in self.checked), default=0)
        where = ", ".join(self.regions)
        counts = f"{len(self.checked)} apps, {len(self.unhealthy)} unhealthy"
        lines = [f"fleet {self.name} ({self.tag_key}={self.name}) in {where}: {counts}"]
        if not self.checked:
            lines.append(
                "no secret carries the tag here: check the fleet's name (--fleet), --tag-key "
                "and --region"
            )
        for checked in self.checked:
            head = f"{'UNHEALTHY' if checked.problems else 'healthy':<9}  "
            head += f"{checked.app.name:<{width}}  {checked.app.region}"
            if checked.healthy:
                lines.append(head)
                continue
            first = self._problem(checked.problems[0])
            lines.append(f"{head}  {first['code']}: {first['message']}  $ {self.fix(checked)}")
        if self.unhealthy and not self.show_key_ids:
            masked = any("{key}" in c for k in self.unhealthy for p in k.problems for c in p.fix)
            if masked:
                lines.append("key ids are masked: run with --show-key-ids to print them in full")
        lines += [notices.as_text() for notices in self.notices]
        return "\n".join(lines)

    def _app(self, checked: Checked) -> dict[str, Any]:
        report = checked.report
        return {
            "app": checked.app.name,
            "region": checked.app.region,
            "secret": {"arn": checked.app.arn, "name": checked.app.secret_name},
            "healthy": checked.healthy,
            "problems": [self._problem(p) for p in checked.problems],
            "fix": self.fix(checked) if checked.problems else None,
            "details": details(checked),
            "status": None if report is None else View(report, self.show_key_ids).as_json(),
        }

    def as_json(self) -> dict[str, Any]:
        """Return the fleet as one JSON-ready object (schema in docs/cli.md)."""
        return {
            "schema": SCHEMA_VERSION,
            "fleet": self.name,
            "tag": {"key": self.tag_key, "value": self.name},
            "regions": self.regions,
            "healthy": self.healthy,
            "counts": {"apps": len(self.checked), "unhealthy": len(self.unhealthy)},
            "apps": [self._app(c) for c in self.checked],
            "notices": [notices.as_json() for notices in self.notices],
        }

    def as_json_text(self) -> str:
        """Return :meth:`as_json` as indented text."""
        return json.dumps(self.as_json(), indent=2)
