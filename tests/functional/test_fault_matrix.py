"""A generated fault matrix: every AWS call of a rotation x every fault kind, invariants checked.

At collection time one local world records the AWS calls of a clean bootstrap rotation and of a
steady-state rotation under each ``OLD_KEY_ACTION`` (``sandbox.recording``). Each recorded call
(client, operation, n-th occurrence) x each fault kind becomes one test, so a call added to a step
is covered without editing this file. A scenario runs the rotation with the fault, lets the driver
retry with the same token as Secrets Manager would, and checks:

* between any two AWS calls: at most two keys, AWSCURRENT's key exists and is Active;
* after each failed attempt: AWSCURRENT logs in over SMTP, at most two keys;
* at the end: the rotation completed (a throttle is retried by botocore and goes unnoticed), no
  orphan key, AWSCURRENT logs in, the fields are right (username == access_key_id, password == v4
  derivation of the stored secret key for the region, unknown keys survive), the old key follows
  ``OLD_KEY_ACTION``, and no secret material reached the output, logs or error texts.

Throttling (its retry waits up to a second) and a run that dies just before the call run for the
default ``OLD_KEY_ACTION`` and the bootstrap; failures before the call, lost answers and a run that
dies just after the call took effect (no error path of the function runs) run for every action.
SMTP faults strike testSecret's login. Steady-state scenarios share one world per action (a
completed scenario leaves the next steady state); a world that broke an invariant is replaced.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import pytest

from rotation_handler import app
from sandbox import invariants
from sandbox.faults import (
    AWS_KINDS,
    SMTP_KINDS,
    SMTP_OPERATION,
    WIRE_KINDS,
    WRITE_KINDS,
    Fault,
    FaultKind,
    inject,
)
from sandbox.recording import Call, Watch, current_key, record_calls
from sandbox.world import World, _default_handler, local_world
from ses_smtp_rotator.password import derive_smtp_password
from tests import leakscan

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sandbox.secrets_manager import Attempt, Rotation

ACTIONS: Final = ("deactivate", "delete", "keep")
DEFAULT_ACTION: Final = "deactivate"
# Short SMTP budgets: a hung login ends in 1 s instead of 10.
FUNCTION_ENV: Final = {"SMTP_TEST_TIMEOUT_SECONDS": "3", "SMTP_ATTEMPT_TIMEOUT_SECONDS": "1"}
# Dying before a call leaves what dying after the previous one leaves, so other actions skip it.
EVERY_ACTION_KINDS: Final = (
    FaultKind.BEFORE,
    FaultKind.LOST_ANSWER,
    FaultKind.LOST_ANSWER_RETRIED,
    FaultKind.LOST_ANSWER_EVERY,
    FaultKind.DIES_AFTER,
)
OLD_KEY_STATUS: Final = {"deactivate": "Inactive", "delete": None, "keep": "Active"}
# The calls that change something: each also meets a lost answer followed by throttled retries
# (the last error a 4xx) and a request applied only after the next call of its service.
WRITES: Final = frozenset(
    {
        "CreateAccessKey",
        "DeleteAccessKey",
        "UpdateAccessKey",
        "TagUser",
        "UntagUser",
        "PutSecretValue",
        "UpdateSecretVersionStage",
    }
)


@dataclass(frozen=True)
class Scenario:
    """One cell of the matrix: a world's phase, its OLD_KEY_ACTION, a call and a fault kind."""

    phase: str  # "bootstrap" (no key yet) or "steady" (a current and an old key)
    action: str
    call: Call
    kind: FaultKind

    @property
    def id(self) -> str:
        """Readable test id: ``steady-keep-createSecret:iam.CreateAccessKey#1-lost-answer``."""
        return f"{self.phase}-{self.action}-{self.call.label}-{self.kind}"

    def fault(self) -> Fault:
        """The fault this scenario injects, striking once."""
        if self.kind in SMTP_KINDS:
            return Fault(SMTP_OPERATION, self.kind)
        return Fault(self.call.operation, self.kind, nth=self.call.nth)


@functools.cache
def recordings() -> dict[tuple[str, str], list[Call]]:
    """Record the calls of a bootstrap rotation and of a steady rotation under each action."""
    recorded: dict[tuple[str, str], list[Call]] = {}
    with local_world(function_env=FUNCTION_ENV) as world, pytest.MonkeyPatch.context() as patch:
        recorded["bootstrap", DEFAULT_ACTION] = record_calls(world)
        for action in ACTIONS:
            patch.setenv("OLD_KEY_ACTION", action)
            world.cold_start()  # a configuration change: new execution environments
            assert world.rotate().ok  # the state this action settles into
            recorded["steady", action] = record_calls(world)
    return recorded


def kinds_for(call: Call, action: str) -> tuple[FaultKind, ...]:
    """The fault kinds a call meets: a write also every kind that takes effect unseen."""
    kinds = AWS_KINDS if action == DEFAULT_ACTION else EVERY_ACTION_KINDS
    if call.operation in WRITES:
        return (*[kind for kind in kinds if kind not in WRITE_KINDS], *sorted(WRITE_KINDS))
    return tuple(kind for kind in kinds if kind not in WRITE_KINDS)


def scenarios() -> list[Scenario]:
    """Every recorded call x every fault kind (throttles for the default action only)."""
    found: list[Scenario] = []
    for (phase, action), calls in recordings().items():
        found += [
            Scenario(phase, action, call, kind)
            for call in calls
            for kind in kinds_for(call, action)
        ]
    smtp_call = Call("smtp", SMTP_OPERATION, 1, "testSecret")
    found += [Scenario("steady", DEFAULT_ACTION, smtp_call, kind) for kind in SMTP_KINDS]
    return found


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "scenario" in metafunc.fixturenames:
        cells = scenarios()
        metafunc.parametrize("scenario", cells, ids=[cell.id for cell in cells])


class Worlds:
    """One running world at a time: reused across steady scenarios of one action."""

    def __init__(self) -> None:
        self._stack: contextlib.ExitStack | None = None
        self._key: tuple[str, str] | None = None
        self.world: World | None = None
        self.canary = f"canary-{secrets.token_hex(8)}"

    def get(self, phase: str, action: str) -> World:
        """Return a world in ``phase`` for ``action`` (a fresh one for each bootstrap)."""
        if self.world is None or phase == "bootstrap" or self._key != (phase, action):
            self.close()
            self._stack = contextlib.ExitStack()
            self.world = self._stack.enter_context(
                local_world(
                    function_env={**FUNCTION_ENV, "OLD_KEY_ACTION": action},
                    bootstrap={"app_canary": self.canary},
                )
            )
            self._key = (phase, action)
            if phase == "steady":
                for _ in range(2):
                    assert self.world.rotate().ok
        return self.world

    def close(self) -> None:
        """Stop the running world, if any."""
        if self._stack is not None:
            self._stack.close()
        self._stack, self._key, self.world = None, None, None


@pytest.fixture(scope="module")
def worlds() -> Iterator[Worlds]:
    pool = Worlds()
    yield pool
    pool.close()


@dataclass
class Outcome:
    rotation: Rotation
    fault: Fault
    watch: Watch
    between: list[str]
    old_key: str | None


def run(world: World, scenario: Scenario) -> Outcome:
    """Run the scenario's rotation with its fault; check the invariants after each attempt."""
    old_key, between = current_key(world), list[str]()
    target = (
        world.ses if scenario.kind in SMTP_KINDS else getattr(app.runtime(), scenario.call.client)
    )

    def after_failed_attempt(attempt: Attempt) -> None:
        # A crash may leave an orphan for the retry to clean; anything else must hold.
        found = invariants.violations(world, foreign=frozenset(world.access_keys()))
        between.extend(f"after attempt {attempt.token[:8]}: {problem}" for problem in found)
        if scenario.kind in SMTP_KINDS and current_key(world) != old_key:
            between.append("a failed SMTP test still moved AWSCURRENT")

    watch = Watch(world)
    with watch.active(), inject(target, scenario.fault()) as fault:
        rotation = world.rotate(max_attempts=3, before_retry=after_failed_attempt)
    return Outcome(rotation, fault, watch, between, old_key)


def end_problems(world: World, scenario: Scenario, outcome: Outcome, canary: str) -> list[str]:
    """What is wrong once the faults stopped and the rotation was retried."""
    problems = [*outcome.watch.problems, *outcome.between, *invariants.violations(world)]
    value = world.value()
    key = value.get("access_key_id")
    if not key or key == outcome.old_key:
        problems.append(f"AWSCURRENT's key did not change (still {key})")
    if value.get("username") != key:
        problems.append("username is not the access key id")
    secret_key = value.get("secret_access_key", "")
    if not secret_key or value.get("password") != derive_smtp_password(secret_key, world.region):
        problems.append("password is not the v4 derivation of the stored key for the region")
    if value.get("app_canary") != canary:
        problems.append("an unknown key of the secret did not survive")
    if (value.get("region"), value.get("port")) != (world.region, world.ses.port):
        problems.append("region or port changed")
    if outcome.old_key:
        expected = OLD_KEY_STATUS[scenario.action]
        status = world.access_keys().get(outcome.old_key)
        if status != expected:
            problems.append(
                f"old key is {status}, OLD_KEY_ACTION={scenario.action} wants {expected}"
            )
    return problems


def leaks(world: World, capfd: pytest.CaptureFixture[str], canary: str) -> list[str]:
    material = world.secret_material() | set(world.driver.rotation_tokens) | {canary}
    leakscan.remember(*material)
    out, err = capfd.readouterr()
    texts = [out, err, *(repr(r.error) + str(r.error) for r in world.driver.history if r.error)]
    return leakscan.find_leaks(texts, material)


def test_fault_scenario(
    worlds: Worlds, scenario: Scenario, capfd: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a world in the scenario's phase, under its OLD_KEY_ACTION
    world = worlds.get(scenario.phase, scenario.action)
    try:
        # WHEN the rotation runs with the fault and the service retries with the same token
        outcome = run(world, scenario)
        # THEN the fault struck, the rotation healed, and every invariant held throughout
        problems = end_problems(world, scenario, outcome, worlds.canary)
        if outcome.fault.fired != 1:
            problems.append(f"the fault fired {outcome.fault.fired} times (recording is stale?)")
        if not outcome.rotation.ok:
            problems.append(
                f"the rotation did not complete: {outcome.rotation.attempts[-1].error!r}"
            )
        if scenario.kind in WIRE_KINDS and outcome.fault.lost < 1:
            problems.append("no request reached the service and lost its answer")
        if scenario.call.operation == "CreateAccessKey" and outcome.fault.lost > 1:
            problems.append("CreateAccessKey was sent again after its answer was lost")
        if scenario.kind is FaultKind.THROTTLE and (
            outcome.fault.retried < 1 or len(outcome.rotation.attempts) != 1
        ):
            problems.append("a throttled call was not retried by botocore unnoticed")
        problems += [f"leaked (prefix): {p}" for p in leaks(world, capfd, worlds.canary)]
    except BaseException:
        worlds.close()
        raise
    if problems:
        worlds.close()  # the next scenario starts from a clean world
    assert problems == [], f"{scenario.id}: {problems}"


def test_the_matrix_covers_every_step_and_kind() -> None:
    # GIVEN the recordings / THEN every step's calls are there, and every kind is exercised
    cells = scenarios()
    steps = {cell.call.step for cell in cells}
    assert steps >= {"createSecret", "setSecret", "testSecret", "finishSecret"}
    assert {cell.kind for cell in cells} == set(AWS_KINDS) | set(SMTP_KINDS)
    # AND every write call of every recording meets both kinds that take effect unseen
    for (phase, action), calls in recordings().items():
        for call in calls:
            met = {c.kind for c in cells if (c.phase, c.action, c.call) == (phase, action, call)}
            assert (call.operation in WRITES) == (met >= WRITE_KINDS), (phase, action, call)
    steady = {call.operation for call in recordings()["steady", DEFAULT_ACTION]}
    assert {"CreateAccessKey", "PutSecretValue", "UpdateSecretVersionStage"} <= steady
    assert {cell.id for cell in cells} == {cell.id for cell in set(cells)}, "ids must be unique"


def test_a_throttle_reaches_botocore_as_the_real_error(worlds: Worlds) -> None:
    # GIVEN a steady world and a throttle on the function's next CreateAccessKey
    world = worlds.get("steady", DEFAULT_ACTION)
    keys_before = len(world.access_keys())
    with inject(app.runtime().iam, Fault("CreateAccessKey", FaultKind.THROTTLE)) as fault:
        # WHEN the rotation runs
        rotation = world.rotate(max_attempts=1)
    # THEN botocore retried once, the key was created once, and the caller did not notice
    assert (rotation.ok, fault.fired, fault.retried) == (True, 1, 1)
    assert len(world.access_keys()) == keys_before


def test_smtp_faults_need_the_next_auth(worlds: Worlds) -> None:
    world = worlds.get("steady", DEFAULT_ACTION)
    with (
        pytest.raises(ValueError, match="AUTH"),
        inject(world.ses, Fault("AUTH", FaultKind.DROP, nth=2)),
    ):
        pass  # pragma: no cover - never reached
    with inject(world.ses, Fault("AUTH", FaultKind.SMTP_421, times=2)) as fault:
        assert not world.login().ok
    assert (fault.fired, world.ses.pending_faults) == (1, 0)
    assert world.login().ok


def test_the_checks_see_a_rotation_that_breaks_an_invariant(
    worlds: Worlds, make_world: Callable[..., World], capfd: pytest.CaptureFixture[str]
) -> None:
    worlds.close()  # one world at a time: moto and the environment are process-wide
    # GIVEN a function with a bug: createSecret deactivates AWSCURRENT's key on its way
    made: list[World] = []

    def broken(event: dict[str, Any], context: Any) -> object:  # noqa: ANN401 - Lambda contract
        world = made[0]
        key = current_key(world)
        if event["Step"] == "createSecret" and key:
            world.iam.update_access_key(
                UserName=world.user_name, AccessKeyId=key, Status="Inactive"
            )
        return _default_handler(event, context)

    made.append(make_world(handler=broken, function_env=FUNCTION_ENV))
    world = made[0]
    assert world.rotate().ok
    scenario = Scenario(
        "steady", DEFAULT_ACTION, Call("sm", "DescribeSecret", 1, "-"), FaultKind.BEFORE
    )
    # WHEN a scenario runs on it
    outcome = run(world, scenario)
    problems = end_problems(world, scenario, outcome, "no-canary")
    # THEN the watch saw AWSCURRENT's key inactive between two calls, and the end checks too
    assert any("AWSCURRENT's live key" in p and "Inactive" in p for p in outcome.watch.problems)
    assert any("unknown key" in p for p in problems)
    assert leaks(world, capfd, "no-canary") == []
