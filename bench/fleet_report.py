"""The fleet benchmark's rows for the bench table and its data for results.json."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Final

from bench.report import Goal, Row, judged

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from bench.fleet import FleetRun

VIOLATIONS_GOAL: Final = Goal(limit=0, text="0")
# A fleet rotation's calls in the steady state: the single secret's 15, plus the GetUser its
# finishSecret makes before it retires the old key (the gate reads the user's path there).
FLEET_CALLS_GOAL: Final = Goal(limit=16, text="<= 16")
# How far the per-app figures of the largest and the smallest fleet may differ and still be
# called linear in N: wall time within a factor of 1.5, calls per rotation within 5 %.
LINEAR_TIME_FACTOR: Final = 1.5
LINEAR_CALLS_FACTOR: Final = 1.05
MAX_SHOWN: Final = 3


def per_rotation(calls: Mapping[str, int], rotations: int) -> dict[str, float]:
    """Return each API's calls per rotation, most frequent first."""
    ordered = sorted(calls.items(), key=lambda item: (-item[1], item[0]))
    return {name: count / rotations for name, count in ordered}


def _by_api(calls: Mapping[str, float]) -> str:
    return ", ".join(f"{name.split('.', 1)[1]} {count:.2g}" for name, count in calls.items())


def _counts(counter: Mapping[str, int]) -> str:
    ordered = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{name} {count}" for name, count in ordered) or "none"


def ceiling(run: FleetRun) -> tuple[float, str]:
    """Return the rotations per second the rate limits allow at most, and the limit that sets it.

    For each limit, its rate divided by the steady state's calls per rotation of its operations;
    the smallest is the fleet's ceiling, whatever the concurrency.
    """
    steady = run.steady
    best: tuple[float, str] = (float("inf"), "no limit applies")
    for limit in run.limits:
        per_rotation = sum(steady.calls.get(op, 0) for op in limit.operations) / steady.rotations
        if per_rotation:
            allowed = limit.rate / per_rotation
            if allowed < best[0]:
                share = f"{limit.rate:g}/s ÷ {per_rotation:.3g} per rotation"
                best = (allowed, f"{limit.name}: {share}")
    return best


def growth(runs: Sequence[FleetRun]) -> tuple[str, bool]:
    """Say how wall time and calls per rotation grow with N, and whether that is linear.

    Linear: the steady round's wall time per app and its calls per rotation are the same (within
    :data:`LINEAR_TIME_FACTOR` and :data:`LINEAR_CALLS_FACTOR`) at the smallest and largest N.
    """
    small, large = runs[0].steady, runs[-1].steady
    time_ratio = (large.seconds / large.rotations) / (small.seconds / small.rotations)
    calls_ratio = large.calls_per_rotation / small.calls_per_rotation
    linear = (
        1 / LINEAR_TIME_FACTOR <= time_ratio <= LINEAR_TIME_FACTOR
        and 1 / LINEAR_CALLS_FACTOR <= calls_ratio <= LINEAR_CALLS_FACTOR
    )
    sizes = ", ".join(str(run.apps) for run in runs)
    calls = ", ".join(f"{run.steady.calls_per_rotation:.1f}" for run in runs)
    seconds = ", ".join(f"{run.steady.seconds:.1f}" for run in runs)
    verdict = "linear in N" if linear else "not linear in N"
    text = (
        f"N = {sizes}: steady-round wall time {seconds} s, calls per rotation {calls}: {verdict} "
        f"(per-app time x{time_ratio:.2f}, calls per rotation x{calls_ratio:.2f} from N = "
        f"{runs[0].apps} to {runs[-1].apps})"
    )
    return text, linear


def size_rows(run: FleetRun) -> tuple[list[Row], dict[str, Any]]:
    """Rows of one fleet size: wall time and calls, throttles and retries, violations."""
    first, steady = run.rounds[0], run.steady
    rotations = sum(r.rotations for r in run.rounds)
    retried = sum(r.retried for r in run.rounds)
    failed: dict[str, int] = {}
    for r in run.rounds:
        for cause, count in r.failed_attempts.items():
            failed[cause] = failed.get(cause, 0) + count
    throttled, absorbed = sum(run.throttled.values()), sum(run.absorbed.values())
    most, limit = ceiling(run)
    label = f"Fleet N = {run.apps}, C = {run.concurrency}"
    timing = (
        f"first rotation {first.seconds:.1f} s, steady state {steady.seconds:.1f} s "
        f"({steady.rotations / steady.seconds:.1f} rotations/s; the rates allow {most:.1f}: "
        f"{limit}); {steady.calls_per_rotation:.1f} calls "
        f"({_by_api(per_rotation(steady.calls, steady.rotations))})"
    )
    throttling = (
        f"{absorbed} of {throttled} throttled answers absorbed ({_counts(run.throttled)}); "
        f"calls out of retries: {_counts(run.exhausted)}; rotations retried {retried} of "
        f"{rotations} (failed attempts: {_counts(failed)})"
    )
    violations = run.violations
    shown = "; ".join(violations[:MAX_SHOWN]) + (" ..." if len(violations) > MAX_SHOWN else "")
    rows = [
        Row(
            measure=f"{label}: wall time per round, AWS calls per rotation (steady state)",
            figure=timing,
        ),
        Row(
            measure=f"{label}: throttles absorbed by botocore's retry, rotations retried",
            figure=throttling,
        ),
        judged(
            f"{label}: AWS calls per rotation (steady state, retries included)",
            f"{steady.calls_per_rotation:.2f}",
            value=steady.calls_per_rotation,
            goal=FLEET_CALLS_GOAL,
        ),
        judged(
            f"{label}: invariant violations ({len(run.rounds)} rounds, all apps)",
            f"{len(violations)}" + (f": {shown}" if violations else ""),
            value=len(violations),
            goal=VIOLATIONS_GOAL,
        ),
    ]
    data = {
        "apps": run.apps,
        "concurrency": run.concurrency,
        "environments": run.environments,
        "watched_calls": run.watched_calls,
        "rounds": [asdict(r) | {"calls_per_rotation": r.calls_per_rotation} for r in run.rounds],
        "throttled": run.throttled,
        "absorbed": run.absorbed,
        "exhausted": run.exhausted,
        "ceiling_rotations_per_second": most,
        "ceiling_limit": limit,
        "rotations_retried": retried,
        "violations": violations,
    }
    return rows, data


def fleet_rows(
    runs: Sequence[FleetRun], *, concurrency: int, source: str
) -> tuple[list[Row], dict[str, Any]]:
    """Rows per fleet size (wall time, calls, throttles, retries, violations) and the growth."""
    rows = [Row(measure="Fleet: function concurrency C", figure=f"{concurrency} ({source})")]
    data: dict[str, Any] = {"concurrency": concurrency, "concurrency_source": source, "runs": []}
    for run in runs:
        section, run_data = size_rows(run)
        rows += section
        data["runs"].append(run_data)
    text, linear = growth(runs)
    rows.append(Row(measure="Fleet: cost growth with N", figure=text))
    data["growth"] = {"text": text, "linear": linear}
    return rows, data
