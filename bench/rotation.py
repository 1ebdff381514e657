"""Rotation benchmarks: overshoot over the propagation delay, AWS calls and SMTP AUTH attempts.

One local world serves every delay: it is bootstrapped and warmed up at D = 0 (the first rotation
after the bootstrap only deactivates the old key; from the next one on, each rotation also deletes
the key deactivated the time before, which is the steady state), then the SES-like server's
propagation delay is set to each D in turn and steady-state rotations are timed.
"""

from __future__ import annotations

import contextlib
import io
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sandbox.calls import count_calls
from sandbox.world import World, local_world

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

# The function's SMTP test budget must exceed the largest D, or the rotation would fail.
_BUDGET_MARGIN_SECONDS = 20


class RotationFailedError(RuntimeError):
    """A benchmark rotation did not complete, so its figures would mean nothing."""


@dataclass(frozen=True, kw_only=True)
class RotationSample:
    """One timed rotation."""

    delay: float
    seconds: float
    auth_attempts: int
    calls: dict[str, int] = field(default_factory=dict)

    @property
    def overshoot(self) -> float:
        """Wall time beyond the emulated propagation delay."""
        return self.seconds - self.delay

    @property
    def total_calls(self) -> int:
        """Logical AWS calls of the rotation."""
        return sum(self.calls.values())


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Swallow the function's JSON logs and metrics (Powertools writes them to ``sys.stdout``)."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def timed_rotation(world: World, *, delay: float) -> RotationSample:
    """Run one rotation with propagation delay ``delay``; count its calls and AUTH attempts.

    Raises
    ------
    RotationFailedError
        The rotation did not complete (the message names the exception type only).
    """
    world.ses.propagation_delay = delay
    before = len(world.ses.auth_attempts)
    with quiet(), count_calls(account_id=world.driver.account_id, region=world.region) as calls:
        started = time.perf_counter()
        rotation = world.rotate()
        seconds = time.perf_counter() - started
    if not rotation.ok:
        error = rotation.attempts[-1].error if rotation.attempts else None
        msg = f"rotation at D={delay:g} s failed: {type(error).__name__}"
        raise RotationFailedError(msg)
    return RotationSample(
        delay=delay,
        seconds=seconds,
        auth_attempts=len(world.ses.auth_attempts) - before,
        calls=dict(calls),
    )


@contextlib.contextmanager
def steady_world(*, max_delay: float) -> Iterator[tuple[World, RotationSample]]:
    """Yield a world in steady state and the sample of its bootstrap rotation."""
    budget = int(max_delay) + _BUDGET_MARGIN_SECONDS
    env = {"SMTP_TEST_TIMEOUT_SECONDS": str(budget)}
    with local_world(function_env=env) as world:
        bootstrap = timed_rotation(world, delay=0.0)
        timed_rotation(world, delay=0.0)
        yield world, bootstrap


@dataclass(frozen=True, kw_only=True)
class RotationRun:
    """Every sample of a rotation benchmark."""

    bootstrap: RotationSample
    samples: list[RotationSample]

    def at(self, delay: float) -> list[RotationSample]:
        """Return the steady-state samples taken at one delay."""
        return [s for s in self.samples if s.delay == delay]


def measure_rotations(
    world: World, bootstrap: RotationSample, repeats: Mapping[float, int]
) -> RotationRun:
    """Time ``repeats[D]`` steady-state rotations at each delay D."""
    samples = [
        timed_rotation(world, delay=delay) for delay, count in repeats.items() for _ in range(count)
    ]
    return RotationRun(bootstrap=bootstrap, samples=samples)
