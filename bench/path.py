"""createSecret's path: the modules of the function whose code one steady createSecret runs.

A profile hook (``sys.setprofile``) watches the createSecret step of one steady-state rotation in
the local world. Every call into a ``rotation_handler`` function is attributed to the nearest
``rotation_handler`` frame below it on the stack (its caller in the package, or none: the Lambda
runtime, or a library such as Powertools or botocore calling back in). A call that crosses from one
module into another is an *entry*; an entry into a module the step had already entered is a
*return*. The step's ``modules`` are the ones whose code ran, in the order first entered.

The count is of modules whose code runs: a module whose constants or exception classes are only
read does not appear.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.rotation import RotationFailedError, quiet

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from types import FrameType

    from sandbox.secrets_manager import StepRecord
    from sandbox.world import World

PACKAGE = "rotation_handler"
STEP = "createSecret"


@dataclass(frozen=True, kw_only=True)
class PathTrace:
    """Which modules a step ran code in, and how often it crossed between them."""

    modules: tuple[str, ...]
    entries: int
    returns: int

    def text(self) -> str:
        """``3 (app, steps, keys); 4 crossings, 1 back into a module already entered``."""
        short = ", ".join(name.rsplit(".", 1)[-1] for name in self.modules)
        return (
            f"{len(self.modules)} ({short}); {self.entries} crossings, "
            f"{self.returns} back into a module already entered"
        )


def follow(calls: Iterable[tuple[str | None, str]]) -> PathTrace:
    """Summarise ``(caller module or None, callee module)`` pairs, in call order.

    Examples
    --------
    >>> follow([(None, "app"), ("app", "app"), ("app", "steps"), ("steps", "app")]).returns
    1
    """
    modules: list[str] = []
    entries = returns = 0
    for caller, callee in calls:
        if caller == callee:
            continue
        if caller is not None:
            entries += 1
            returns += callee in modules
        if callee not in modules:
            modules.append(callee)
    return PathTrace(modules=tuple(modules), entries=entries, returns=returns)


def _module(frame: FrameType) -> str | None:
    """Return the package's module whose code ``frame`` runs, if it is one."""
    name = str(frame.f_globals.get("__name__", ""))
    return name if name == PACKAGE or name.startswith(f"{PACKAGE}.") else None


def _nearest(frame: FrameType | None) -> str | None:
    """Return the module of the nearest frame of the package, from ``frame`` down the stack."""
    while frame is not None and _module(frame) is None:
        frame = frame.f_back
    return None if frame is None else _module(frame)


@contextlib.contextmanager
def _watching(world: World, calls: list[tuple[str | None, str]]) -> Iterator[None]:
    """Record the package's calls during the driver's next createSecret step."""
    previous = world.driver.on_step

    def profile(frame: FrameType, event: str, _arg: Any) -> None:  # noqa: ANN401 - sys.setprofile's
        if event != "call":
            return
        callee = _module(frame)
        if callee is not None:
            calls.append((_nearest(frame.f_back), callee))

    def on_step(step: str, token: str, record: StepRecord | None) -> None:
        if step == STEP and record is None and not calls:
            sys.setprofile(profile)
        elif step == STEP:
            sys.setprofile(None)
        if previous is not None:
            previous(step, token, record)

    world.driver.on_step = on_step
    try:
        yield
    finally:
        sys.setprofile(None)
        world.driver.on_step = previous


def trace_create_secret(world: World) -> PathTrace:
    """Rotate ``world`` once and return the path of its first createSecret.

    Raises
    ------
    RotationFailedError
        The rotation did not complete, so its path would not be a steady one.
    """
    calls: list[tuple[str | None, str]] = []
    with quiet(), _watching(world, calls):
        rotation = world.rotate()
    if not rotation.ok or not calls:
        msg = "the traced rotation did not complete"
        raise RotationFailedError(msg)
    return follow(calls)
