"""Keys made by hand around a failed attempt are never taken for the function's own orphans.

Regressions found by a stateful property test (hypothesis): before the fix, a failed attempt left
its intent open, so the retry deleted a key made by hand meanwhile (contract 3), and a rotation
cancelled after an unstored key stranded that key and wedged the two-key limit (contract 2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rotation_handler import app
from rotation_handler.exceptions import ForeignKeyError
from sandbox import invariants
from sandbox.faults import Fault, FaultKind, LambdaDiedError, inject

if TYPE_CHECKING:
    from sandbox.world import World


def test_a_key_made_by_hand_after_a_failed_attempt_survives_the_retry(world: World) -> None:
    # GIVEN a first key, and an attempt whose CreateAccessKey fails before reaching IAM
    assert world.rotate().ok
    with inject(app.runtime().iam, Fault("CreateAccessKey", FaultKind.BEFORE)):
        failed = world.rotate(max_attempts=1)
    assert not failed.ok
    # WHEN someone makes a key by hand, then Secrets Manager retries with the same token
    made = world.iam.create_access_key(UserName=world.user_name)["AccessKey"]["AccessKeyId"]
    retry = world.rotate(token=failed.token, max_attempts=1)
    # THEN the hand-made key is still there, and the retry fails naming it
    assert made in world.access_keys()
    assert isinstance(retry.attempts[-1].error, ForeignKeyError)
    assert made in str(retry.attempts[-1].error)


def test_a_key_made_by_hand_racing_create_access_key_survives_the_retry(world: World) -> None:
    # GIVEN a first key, and someone adding one just before the function's CreateAccessKey
    assert world.rotate().ok
    made: list[str] = []

    def race(**_: object) -> None:
        if not made:
            key = world.iam.create_access_key(UserName=world.user_name)["AccessKey"]
            made.append(key["AccessKeyId"])

    iam = app.runtime().iam
    iam.meta.events.register("before-call.iam.CreateAccessKey", race, unique_id="race")
    try:
        first = world.rotate(max_attempts=1)
    finally:
        iam.meta.events.unregister("before-call.iam.CreateAccessKey", unique_id="race")
    assert "meanwhile" in str(first.attempts[-1].error)
    # WHEN Secrets Manager retries with the same token
    retry = world.rotate(token=first.token, max_attempts=1)
    # THEN the hand-made key is still there and the retry failed naming it
    assert made[0] in world.access_keys()
    assert isinstance(retry.attempts[-1].error, ForeignKeyError)
    assert made[0] in str(retry.attempts[-1].error)


def test_a_rotation_cancelled_after_an_unstored_key_does_not_wedge(world: World) -> None:
    # GIVEN a steady state (a current and an old key) and an attempt whose PutSecretValue fails
    assert world.rotate().ok
    assert world.rotate().ok
    with inject(app.runtime().sm, Fault("PutSecretValue", FaultKind.BEFORE)):
        failed = world.rotate(max_attempts=1)
    assert not failed.ok
    # THEN the attempt kept its new key (a failed put may still have stored it) beside AWSCURRENT's
    current = world.value()["access_key_id"]
    (kept,) = set(world.access_keys()) - {current}
    # WHEN the rotation is cancelled as the runbook says, and a new one starts
    world.cancel_rotation(failed.token)
    rotation = world.rotate(max_attempts=1)
    # THEN it completes: the intent vouches for the unstored key, which goes; nothing wedges
    assert rotation.ok, rotation.attempts[-1].error
    assert kept not in world.access_keys()
    assert invariants.violations(world) == []


def test_a_rotation_cancelled_after_a_run_died_does_not_wedge(world: World) -> None:
    # GIVEN a steady state, and a run that dies right after CreateAccessKey took effect: no error
    # path ran, so its key is stored nowhere and its intent stays open
    assert world.rotate().ok
    assert world.rotate().ok
    current = world.value()["access_key_id"]
    with inject(app.runtime().iam, Fault("CreateAccessKey", FaultKind.DIES_AFTER)):
        died = world.rotate(max_attempts=1)
    assert isinstance(died.attempts[-1].error, LambdaDiedError)
    (stranded,) = set(world.access_keys()) - {current}
    # WHEN the rotation is cancelled as the runbook says, and a new one (a new token) starts
    world.cancel_rotation(died.token)
    rotation = world.rotate(max_attempts=1)
    # THEN it recognises the dead run's key as the function's own, deletes it and completes
    assert rotation.ok, rotation.attempts[-1].error
    assert stranded not in world.access_keys()
    assert invariants.violations(world) == []
