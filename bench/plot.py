"""The plot of rotation time against propagation delay (matplotlib, Agg backend)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt

if TYPE_CHECKING:
    from pathlib import Path

    from bench.rotation import RotationSample

_POLL_SECONDS = 5.0


def polling_worst_case(delay: float, interval: float = _POLL_SECONDS) -> float:
    """Worst wall time of a loop that waits ``interval`` between attempts: up to D + interval."""
    return delay + interval


def plot_rotation(samples: list[RotationSample], path: Path, *, goal: float) -> Path:
    """Plot each rotation's wall time against D, beside the ideal, the goal and 5 s polling."""
    delays = sorted({s.delay for s in samples})
    grid = [i * max(delays, default=1.0) / 100 for i in range(101)]
    figure, axes = plt.subplots(figsize=(7, 4.5))
    axes.plot(grid, grid, color="grey", linewidth=1, label="ideal: wall time = D")
    axes.plot(
        grid, [d + goal for d in grid], color="grey", linestyle="--", label=f"goal: D + {goal:g} s"
    )
    axes.plot(
        grid,
        [polling_worst_case(d) for d in grid],
        color="tab:red",
        linestyle=":",
        label=f"polling every {_POLL_SECONDS:g} s: worst case D + {_POLL_SECONDS:g} s",
    )
    axes.scatter(
        [s.delay for s in samples], [s.seconds for s in samples], label="measured rotations"
    )
    axes.set_xlabel("emulated IAM-to-SES propagation delay D (s)")
    axes.set_ylabel("steady-state rotation wall time (s)")
    axes.set_title("Rotation time against propagation delay (local world)")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
