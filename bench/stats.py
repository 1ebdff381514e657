"""Summaries of repeated measurements: median and spread."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence


@dataclass(frozen=True, kw_only=True)
class Summary:
    """Median, min, max and quartiles of ``n`` samples."""

    n: int
    median: float
    minimum: float
    maximum: float
    q1: float
    q3: float

    def as_dict(self) -> dict[str, float]:
        """Return the summary as a JSON-ready mapping."""
        return asdict(self)

    def text(self, unit: str = "", digits: int = 2) -> str:
        """Format as ``median (min a, max b, n=k)``; the spread is left out for one sample."""
        median = f"{self.median:.{digits}f}{unit}"
        if self.n == 1:
            return f"{median} (n=1)"
        low, high = f"{self.minimum:.{digits}f}", f"{self.maximum:.{digits}f}"
        return f"{median} (min {low}, max {high}, n={self.n})"


def summarize(samples: Sequence[float]) -> Summary:
    """Summarize at least one sample.

    Raises
    ------
    ValueError
        ``samples`` is empty.
    """
    if not samples:
        msg = "no samples to summarize"
        raise ValueError(msg)
    values = sorted(samples)
    if len(values) == 1:
        q1 = q3 = values[0]
    else:
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return Summary(
        n=len(values),
        median=statistics.median(values),
        minimum=values[0],
        maximum=values[-1],
        q1=q1,
        q3=q3,
    )
