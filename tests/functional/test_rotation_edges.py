"""Edge cases: keys changed by hand between steps, damaged versions, races with IAM."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from rotation_handler import app
from rotation_handler.exceptions import AccessKeyError, StagingError
from sandbox import invariants
from sandbox.faults import Fault, FaultKind, inject
from sandbox.secrets_manager import LocalLambdaContext

if TYPE_CHECKING:
    from collections.abc import Callable

    from sandbox.world import World


def pending_key(world: World, token: str) -> str:
    value = world.sm.get_secret_value(SecretId=world.secret_arn, VersionId=token)["SecretString"]
    return str(json.loads(value)["access_key_id"])


def test_pending_key_deleted_by_hand_is_reported(world: World) -> None:
    # GIVEN a rotation whose pending key someone deleted after createSecret
    token = world.driver.start()
    assert world.driver.invoke("createSecret", token).ok
    world.iam.delete_access_key(UserName=world.user_name, AccessKeyId=pending_key(world, token))
    # WHEN setSecret runs
    record = world.driver.invoke("setSecret", token)
    # THEN it fails saying the rotation must be cancelled and started again
    assert isinstance(record.error, AccessKeyError)
    assert "cancel-rotate-secret" in str(record.error)


def test_pending_key_deactivated_by_hand_is_reactivated(world: World) -> None:
    token = world.driver.start()
    assert world.driver.invoke("createSecret", token).ok
    key_id = pending_key(world, token)
    world.iam.update_access_key(UserName=world.user_name, AccessKeyId=key_id, Status="Inactive")
    assert world.driver.invoke("setSecret", token).ok
    assert world.access_keys()[key_id] == "Active"
    assert all(world.driver.invoke(step, token).ok for step in ("testSecret", "finishSecret"))
    assert invariants.violations(world) == []


def test_damaged_previous_version_does_not_block_rotation(world: World) -> None:
    # GIVEN two rotations, then a damaged value staged as AWSPREVIOUS by hand (the old key's version
    # loses its label but still exists)
    assert world.rotate().ok
    assert world.rotate().ok
    old = world.value("AWSPREVIOUS")["access_key_id"]
    world.sm.put_secret_value(
        SecretId=world.secret_arn, SecretString="{broken", VersionStages=["AWSPREVIOUS"]
    )
    # WHEN the next rotation runs
    rotation = world.rotate(max_attempts=1)
    # THEN the damaged version is passed over, and the old key, still held by its unlabelled
    # version, made room as an old key
    assert rotation.ok, rotation.attempts[-1].error
    assert old not in world.access_keys()
    assert invariants.violations(world) == []


@pytest.mark.usefixtures("world")
def test_secret_that_does_not_exist() -> None:
    event = {
        "SecretId": "arn:aws:secretsmanager:us-east-1:123456789012:secret:gone-AbCdEf",
        "ClientRequestToken": "t",
        "Step": "createSecret",
    }
    with pytest.raises(StagingError, match="does not exist"):
        app.lambda_handler(event, LocalLambdaContext())  # type: ignore[arg-type]


def test_promote_answer_lost_heals_old_key_policy_on_retry(
    make_world: Callable[..., World],
) -> None:
    # GIVEN OLD_KEY_ACTION=delete and a first key
    world = make_world(function_env={"OLD_KEY_ACTION": "delete"})
    assert world.rotate().ok
    old = world.value()["access_key_id"]
    # WHEN finishSecret's promotion takes effect but its answer is lost, and the service retries
    with inject(app.runtime().sm, Fault("UpdateSecretVersionStage", FaultKind.LOST_ANSWER)):
        rotation = world.rotate()
    # THEN the retry found the token already AWSCURRENT and still applied the old-key policy
    assert rotation.ok
    assert len(rotation.attempts) == 2
    assert old not in world.access_keys()
    assert invariants.violations(world) == []


def test_delete_answer_lost_while_making_room_heals(world: World) -> None:
    assert world.rotate().ok
    assert world.rotate().ok
    with inject(app.runtime().iam, Fault("DeleteAccessKey", FaultKind.LOST_ANSWER)):
        rotation = world.rotate()
    assert rotation.ok
    assert invariants.violations(world) == []


def test_key_created_by_hand_between_make_room_and_create_is_a_clear_error(world: World) -> None:
    # GIVEN a first key; someone adds a key right when the function is about to create one
    assert world.rotate().ok

    class RaceToTheLimit:
        def __init__(self) -> None:
            self.key: str | None = None

        def __call__(self, **_: object) -> None:
            if self.key is None:
                self.key = world.iam.create_access_key(UserName=world.user_name)["AccessKey"][
                    "AccessKeyId"
                ]

    race = RaceToTheLimit()
    iam = app.runtime().iam
    iam.meta.events.register("before-call.iam.CreateAccessKey", race, unique_id="race")
    try:
        rotation = world.rotate(max_attempts=1)
    finally:
        iam.meta.events.unregister("before-call.iam.CreateAccessKey", unique_id="race")
    # THEN createSecret fails naming the limit; the hand-made key and AWSCURRENT are untouched
    assert isinstance(rotation.attempts[-1].error, AccessKeyError)
    assert "limit" in str(rotation.attempts[-1].error)
    assert race.key in world.access_keys()
    assert invariants.violations(world, foreign=frozenset({str(race.key)})) == []


def test_rotation_cancelled_by_hand_does_not_wedge_the_key_limit(
    make_world: Callable[..., World],
) -> None:
    # GIVEN a first key, then a rotation that created its key but was cancelled by hand
    # (AWSPENDING removed, as the runbook says): two keys, AWSCURRENT's and the cancelled one
    world = make_world(function_env={"OLD_KEY_ACTION": "delete"})
    assert world.rotate().ok
    token = world.driver.start()
    assert world.driver.invoke("createSecret", token).ok
    cancelled = pending_key(world, token)
    world.cancel_rotation(token)
    assert len(world.access_keys()) == 2
    # WHEN a new rotation runs
    rotation = world.rotate()
    # THEN the cancelled rotation's key, held by a version without labels, made room
    assert rotation.ok, rotation.attempts[-1].error
    assert cancelled not in world.access_keys()
    assert invariants.violations(world) == []
