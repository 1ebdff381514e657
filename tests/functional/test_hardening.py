"""Regression tests for the ways production broke a rotation (each one failed before its fix).

Lost answers to calls that are not idempotent, a stack update writing the bootstrap value over
AWSCURRENT, two secrets naming one IAM user, a rolled-back version promoted again, and
configuration that only the function's environment carries.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from rotation_handler import app
from rotation_handler.exceptions import StagingError, UserOwnedError
from sandbox import invariants
from sandbox.faults import Fault, FaultKind, inject
from sandbox.wire import NOWHERE, RawBody, deliver

if TYPE_CHECKING:
    from collections.abc import Callable

    from sandbox.world import World


def stage_of(world: World, stage: str) -> str:
    return next(v for v, stages in world.driver.stages().items() if stage in stages)


# -- lost answers ------------------------------------------------------------------------------


@pytest.mark.parametrize("rotated_before", [0, 1], ids=["bootstrap", "steady-state"])
def test_create_access_key_answer_lost_then_retried_by_the_sdk_makes_one_key(
    world: World, rotated_before: int
) -> None:
    # GIVEN a secret rotated `rotated_before` times
    for _ in range(rotated_before):
        assert world.rotate().ok
    keys_before = set(world.access_keys())
    # WHEN CreateAccessKey reaches IAM, its answer is lost and the SDK would send it again
    with inject(
        app.runtime().iam, Fault("CreateAccessKey", FaultKind.LOST_ANSWER_RETRIED)
    ) as fault:
        rotation = world.rotate()
    # THEN the request was sent once (no blind repeat), the key it made without an answer was
    # found and deleted, and the service's retry completed the rotation
    assert fault.lost == 1
    assert rotation.ok, rotation.attempts[-1].error
    assert invariants.violations(world) == []
    made = set(world.access_keys()) - keys_before
    assert made == {world.value()["access_key_id"]}
    # AND the next rotation is not wedged by an untracked key
    assert world.rotate(max_attempts=1).ok
    assert invariants.violations(world) == []


def test_put_secret_value_answer_lost_on_every_attempt_keeps_the_stored_key(world: World) -> None:
    # GIVEN a first rotation
    assert world.rotate().ok
    # WHEN every attempt of createSecret's PutSecretValue is stored but its answer is lost
    with inject(app.runtime().sm, Fault("PutSecretValue", FaultKind.LOST_ANSWER_EVERY)) as fault:
        rotation = world.rotate()
    # THEN the key the stored version references was not deleted: the rotation completes
    assert fault.lost > 1
    assert rotation.ok, rotation.attempts[-1].error
    assert world.login().ok
    assert invariants.violations(world) == []


class StoredThenServerError:
    """A gateway in front of Secrets Manager: each PutSecretValue is stored, then answered 500."""

    def __init__(self) -> None:
        self.answered = 0

    def __call__(self, request: Any, event_name: str = "", **_: Any) -> AWSResponse:  # noqa: ANN401 - botocore hook
        deliver(request, event_name)
        request.url = NOWHERE  # moto's stubber, a later handler, must not store it twice
        self.answered += 1
        headers = HTTPHeaders()
        headers["Content-Type"] = "application/x-amz-json-1.1"
        body = json.dumps({"__type": "InternalServiceError", "message": "try again"}).encode()
        return AWSResponse(str(request.url), 500, headers, RawBody(body))


def test_put_secret_value_stored_but_answered_with_server_errors_keeps_the_key(
    world: World,
) -> None:
    # GIVEN a first rotation
    assert world.rotate().ok
    # WHEN createSecret's PutSecretValue is stored but every SDK attempt is answered with a 500
    gateway = StoredThenServerError()
    hook: Any = gateway  # botocore types its hooks as returning None; before-send may answer
    events = app.runtime().sm.meta.events
    events.register_first("before-send.secrets-manager.PutSecretValue", hook, unique_id="gw")
    try:
        first = world.driver.attempt(world.driver.start())
    finally:
        events.unregister("before-send.secrets-manager.PutSecretValue", unique_id="gw")
    assert gateway.answered > 1
    # THEN createSecret read the version back and carried on: the stored key was kept
    assert first.ok, first.error
    assert world.login().ok
    assert invariants.violations(world) == []


# -- one IAM user, one secret ------------------------------------------------------------------


def test_a_second_secret_on_the_same_user_is_refused_naming_the_first(world: World) -> None:
    # GIVEN stack A's secret, rotated twice (a live key and an old Inactive one)
    assert world.rotate().ok
    assert world.rotate().ok
    keys_before = world.access_keys()
    # WHEN stack B's secret names the same IAM user and rotates (the service retries it)
    other = world.another_deployment("stack-b-smtp")
    first = other.rotate(max_attempts=1)
    attempts = [first, other.rotate(token=first.token, max_attempts=1)]
    # THEN each createSecret is refused with an error naming A's secret and the way out
    for rotation in attempts:
        assert not rotation.ok
        error = rotation.attempts[-1].error
        assert isinstance(error, UserOwnedError)
        assert world.secret_arn in str(error)
        assert "tag-user --user-name" in str(error)
    # AND A's keys are untouched and A's credentials still log in; A keeps rotating
    assert world.access_keys() == keys_before
    assert world.login().ok
    assert world.rotate().ok
    assert invariants.violations(world) == []


# -- roll-back ---------------------------------------------------------------------------------


def test_a_rolled_back_version_is_not_promoted_again_and_the_runbook_heals(world: World) -> None:
    # GIVEN two rotations; AWS left AWSPENDING on the version it promoted (it may)
    assert world.rotate().ok
    old_key = world.value()["access_key_id"]
    rotation = world.rotate()
    assert rotation.ok
    rolled_back = rotation.token
    world.sm.update_secret_version_stage(
        SecretId=world.secret_arn, VersionStage="AWSPENDING", MoveToVersionId=rolled_back
    )
    # WHEN the runbook's roll-back runs: the old key Active again, AWSCURRENT moved back
    world.iam.update_access_key(UserName=world.user_name, AccessKeyId=old_key, Status="Active")
    world.sm.update_secret_version_stage(
        SecretId=world.secret_arn,
        VersionStage="AWSCURRENT",
        MoveToVersionId=stage_of(world, "AWSPREVIOUS"),
        RemoveFromVersionId=rolled_back,
    )
    assert world.value()["access_key_id"] == old_key
    # AND the service retries the rolled-back token
    record = world.driver.invoke("finishSecret", rolled_back)
    # THEN it is refused, saying how to take AWSPENDING off; the restored key stays live
    assert isinstance(record.error, StagingError)
    assert "is AWSPREVIOUS" in str(record.error)
    assert "--remove-from-version-id" in str(record.error)
    assert world.value()["access_key_id"] == old_key
    assert world.access_keys()[old_key] == "Active"
    assert world.login().ok
    # WHEN the runbook's last command takes AWSPENDING off the rolled-back version
    world.sm.update_secret_version_stage(
        SecretId=world.secret_arn, VersionStage="AWSPENDING", RemoveFromVersionId=rolled_back
    )
    # THEN a new rotation completes from the restored key
    assert world.rotate(max_attempts=1).ok
    assert invariants.violations(world) == []


# -- a stack update writes the bootstrap value over AWSCURRENT -------------------------------------


def test_a_stack_update_then_a_failing_rotation_keeps_the_live_key(world: World) -> None:
    # GIVEN a secret with a field of the team's own and a password for a second region, rotated
    # twice: the live key, and an old one Inactive
    world.sm.put_secret_value(
        SecretId=world.secret_arn,
        SecretString=json.dumps(
            world.value() | {"team": "billing", "passwords": {"eu-central-1": None}}
        ),
        VersionStages=["AWSCURRENT"],
    )
    assert world.rotate().ok
    assert world.rotate().ok
    live = world.value()["access_key_id"]
    # WHEN a stack update writes the bootstrap value over AWSCURRENT (CloudFormation does that)
    world.write_bootstrap_over_current()
    # AND the next rotation fails its SMTP test (a 421 fails the step at once)
    world.ses.fail_next("421")
    failed = world.rotate(max_attempts=1)
    # THEN the live key is still there, Active, and logs in from the version that holds it
    assert not failed.ok
    assert world.access_keys().get(live) == "Active"
    assert world.value("AWSPREVIOUS")["access_key_id"] == live
    assert world.login("AWSPREVIOUS").ok
    # WHEN the service retries once the server is healthy
    retried = world.driver.rotate(token=failed.token, max_attempts=1)
    # THEN the new version keeps the team's field and the second region's password
    assert retried.ok, retried.attempts[-1].error
    value = world.value()
    assert value["team"] == "billing"
    assert set(value["passwords"]) == {"eu-central-1"}
    assert all(value["passwords"].values())
    assert world.login().ok
    # AND the key that was live is the one retired (deactivated), not kept Active
    assert world.access_keys().get(live) == "Inactive"
    assert invariants.violations(world) == []


def test_smtp_settings_of_the_environment_are_tested_before_use(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a rotated secret, then a stack update that sets SMTP_PORT to a port nothing serves
    world = make_world()
    assert world.rotate().ok
    live = world.value()
    monkeypatch.setenv("SMTP_PORT", "9")
    world.cold_start()
    # WHEN a rotation runs
    failed = world.rotate(max_attempts=1)
    # THEN its SMTP test fails against the new port, and nothing readers use changed
    assert not failed.ok
    assert failed.attempts[-1].steps[-1].step == "testSecret"
    assert world.value() == live
    assert world.access_keys()[live["access_key_id"]] == "Active"
    assert world.login().ok
    # WHEN the port is fixed, the stuck rotation cancelled (its version keeps the port it was
    # made with) and a new one started / THEN the new version carries the port
    monkeypatch.setenv("SMTP_PORT", str(world.ses.port))
    world.cold_start()
    world.cancel_rotation(failed.token)
    assert world.rotate(max_attempts=1).ok
    assert world.value()["port"] == world.ses.port
    assert world.login().ok
    assert invariants.violations(world) == []
