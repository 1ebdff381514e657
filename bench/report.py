"""Rows of the report, the goal comparison and the Markdown table."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Iterable

Mark = Literal["met", "missed", "n/a"]
_COMPARE = {"<=": operator.le, "<": operator.lt, ">=": operator.ge}


@dataclass(frozen=True, kw_only=True)
class Goal:
    """A goal on one figure: ``value <op> limit`` (for example ``<= 0.5``), shown as ``text``."""

    limit: float
    op: Literal["<=", "<", ">="] = "<="
    text: str = ""

    def met_by(self, value: float) -> bool:
        """Whether ``value`` meets the goal."""
        return bool(_COMPARE[self.op](value, self.limit))

    def label(self) -> str:
        """Return the goal as shown in the table."""
        return self.text or f"{self.op} {self.limit:g}"


@dataclass(frozen=True, kw_only=True)
class Row:
    """One line of the table: what was measured, the figure, the goal and the verdict."""

    measure: str
    figure: str
    goal: str = "—"
    mark: Mark = "n/a"


def judged(measure: str, figure: str, *, value: float, goal: Goal) -> Row:
    """Return a row whose mark compares ``value`` with ``goal``."""
    mark: Mark = "met" if goal.met_by(value) else "missed"
    return Row(measure=measure, figure=figure, goal=goal.label(), mark=mark)


_SYMBOL: dict[Mark, str] = {"met": "✅ met", "missed": "❌ missed", "n/a": "—"}


def _escape(cell: str) -> str:
    return cell.replace("|", "\\|")


def markdown_table(rows: Iterable[Row]) -> str:
    """Format rows as a Markdown table: measure, figure, goal, met/missed."""
    lines = ["| Measure | Figure | Goal | Result |", "|---|---|---|---|"]
    lines += [
        f"| {_escape(r.measure)} | {_escape(r.figure)} | {_escape(r.goal)} | {_SYMBOL[r.mark]} |"
        for r in rows
    ]
    return "\n".join(lines)


def missed(rows: Iterable[Row]) -> list[str]:
    """Return the measures whose goal was missed."""
    return [r.measure for r in rows if r.mark == "missed"]
