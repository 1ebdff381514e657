"""What ``status --fleet`` finds, as data: the types its reader and its renderer share.

It sits below :mod:`ses_smtp_rotator._status_fleet` (which reads) and
:mod:`ses_smtp_rotator._status_fleet_render` (which shows), so that they form no import circle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ses_smtp_rotator._status_model import Problem, Report

__all__ = ["App", "Checked"]


@dataclass(frozen=True)
class App:
    """A secret of the fleet: where it is and what it is called (never its value)."""

    name: str
    region: str
    arn: str
    secret_name: str


@dataclass
class Checked:
    """An app and what ``status`` found: its report, or the one problem that stopped the read."""

    app: App
    report: Report | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        """Whether nothing needs a person."""
        return not self.problems
