"""Watch the rotation function's AWS calls: record them in order, check invariants between them.

* :func:`record_calls` lists the calls a rotation makes, each as ``(client, operation, n-th
  occurrence)`` with the step that made it, from botocore's ``before-call`` events on the
  function's own clients (``app.runtime().sm`` / ``.iam``). The fault matrix turns that list into
  scenarios, so a call added to a step is covered without editing a test.
* :class:`Watch` checks, before every call of the function and after every step, what must hold
  between any two AWS calls: at most two keys, the live key (AWSCURRENT's, or AWSPREVIOUS's while
  AWSCURRENT holds a bootstrap value) exists and is Active. It reads
  moto's backends directly (no AWS call of its own).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from moto.iam.models import iam_backends

from sandbox.invariants import MAX_KEYS
from sandbox.secrets_manager import CURRENT, PREVIOUS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sandbox.secrets_manager import StepRecord
    from sandbox.world import World


@dataclass(frozen=True)
class Call:
    """One AWS call of a rotation: which client, which operation, its n-th occurrence."""

    client: str
    operation: str
    nth: int
    step: str

    @property
    def label(self) -> str:
        """``createSecret:iam.CreateAccessKey#1``."""
        return f"{self.step}:{self.client}.{self.operation}#{self.nth}"


def _clients() -> dict[str, Any]:
    from rotation_handler import app  # noqa: PLC0415 - loads with the world's environment

    runtime = app.runtime()
    return {"sm": runtime.sm, "iam": runtime.iam}


@contextlib.contextmanager
def _on_step(
    world: World, callback: Callable[[str, str, StepRecord | None], None]
) -> Iterator[None]:
    """Chain ``callback`` to the driver's step notifications inside the block."""
    previous = world.driver.on_step

    def both(step: str, token: str, record: StepRecord | None) -> None:
        if previous is not None:
            previous(step, token, record)
        callback(step, token, record)

    world.driver.on_step = both
    try:
        yield
    finally:
        world.driver.on_step = previous


@contextlib.contextmanager
def _before_calls(callback: Callable[[str, str], None], unique: str) -> Iterator[None]:
    """Call ``callback(client, operation)`` before each call of the function's clients."""
    clients = _clients()
    hooks = {name: (lambda model, _name=name, **_: callback(_name, model.name)) for name in clients}
    for name, client in clients.items():
        client.meta.events.register("before-call", hooks[name], unique_id=f"{unique}-{name}")
    try:
        yield
    finally:
        for name, client in clients.items():
            client.meta.events.unregister("before-call", unique_id=f"{unique}-{name}")


def record_calls(world: World, **rotate: Any) -> list[Call]:  # noqa: ANN401 - forwarded
    """Run one rotation (``world.rotate(**rotate)``) and return its AWS calls in order.

    Raises
    ------
    RuntimeError
        The rotation did not complete at its first attempt (a recording must be clean).
    """
    calls: list[Call] = []
    step = ["-"]

    def on_call(client: str, operation: str) -> None:
        nth = 1 + sum(1 for c in calls if (c.client, c.operation) == (client, operation))
        calls.append(Call(client, operation, nth, step[0]))

    def on_step(name: str, _token: str, record: StepRecord | None) -> None:
        step[0] = name if record is None else "-"

    with _on_step(world, on_step), _before_calls(on_call, "record-calls"):
        rotation = world.rotate(**rotate)
    if not rotation.ok or len(rotation.attempts) != 1:
        msg = f"the recording rotation did not complete at once: {rotation.attempts[-1].error!r}"
        raise RuntimeError(msg)
    return calls


def stage_key(world: World, stage: str) -> str | None:
    """Return the key id of the version labelled ``stage``, from moto's backend (no AWS call)."""
    for version in world.driver._secret().versions.values():  # noqa: SLF001 - the world's driver
        if stage in version["version_stages"]:
            try:
                value = json.loads(version.get("secret_string", "{}"))
            except ValueError:
                return None
            key = value.get("access_key_id") if isinstance(value, dict) else None
            return key if isinstance(key, str) else None
    return None


def current_key(world: World) -> str | None:
    """AWSCURRENT's access key id, read from moto's backend (no AWS call)."""
    return stage_key(world, CURRENT)


def live_key(world: World) -> tuple[str | None, str]:
    """Return the key readers use and the stage holding it.

    That is AWSCURRENT's key, or AWSPREVIOUS's while a bootstrap value written over AWSCURRENT (a
    stack update) holds none.
    """
    current = current_key(world)
    if current is not None:
        return current, CURRENT
    return stage_key(world, PREVIOUS), PREVIOUS


def key_statuses(world: World) -> dict[str, str]:
    """Return the user's access keys (id -> status), read from moto's backend (no AWS call)."""
    user = iam_backends[world.driver.account_id]["global"].users.get(world.user_name)
    return {} if user is None else {k.access_key_id: k.status for k in user.access_keys}


@dataclass
class Watch:
    """Checks the between-calls invariants before each AWS call and after each step."""

    world: World
    problems: list[str] = field(default_factory=list)
    checks: int = 0

    def check(self, where: str) -> None:
        """Record what is wrong now, naming ``where`` it was seen."""
        self.checks += 1
        keys = key_statuses(self.world)
        if len(keys) > MAX_KEYS:
            self.problems.append(f"{where}: {len(keys)} access keys")
        live, stage = live_key(self.world)
        if live and keys.get(live) != "Active":
            status = keys.get(live, "deleted")
            self.problems.append(f"{where}: {stage}'s live key {live} is {status}")

    @contextlib.contextmanager
    def active(self) -> Iterator[Watch]:
        """Watch the function's calls inside the block."""

        def on_step(step: str, _token: str, record: StepRecord | None) -> None:
            if record is not None:
                self.check(f"after {step}")

        def on_call(client: str, operation: str) -> None:
            self.check(f"before {client}.{operation}")

        with _on_step(self.world, on_step), _before_calls(on_call, f"watch-{id(self)}"):
            yield self
