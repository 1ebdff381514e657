"""Rotations that succeed: bootstrap, steady state, each old-key policy, idempotent steps."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from rotation_handler import versions
from rotation_handler.app import lambda_handler
from sandbox import invariants
from sandbox.calls import count_calls
from sandbox.events import load_event
from sandbox.secrets_manager import STEPS, LocalLambdaContext
from ses_smtp_rotator.password import derive_smtp_password

if TYPE_CHECKING:
    from collections.abc import Callable

    from sandbox.world import World


def test_bootstrap_rotation_creates_the_first_key(world: World) -> None:
    # GIVEN a secret holding only the bootstrap value and a user with no key
    assert world.access_keys() == {}
    # WHEN Secrets Manager rotates it
    rotation = world.rotate()
    # THEN the new version holds a key that logs in, with every field of the schema
    assert rotation.ok, rotation.attempts[-1].error
    value = world.value()
    key_id = value["access_key_id"]
    assert world.access_keys() == {key_id: "Active"}
    assert value["username"] == key_id
    assert value["iam_user_name"] == world.user_name
    assert (value["region"], value["host"], value["port"]) == (
        "us-east-1",
        "localhost",
        world.ses.port,
    )
    assert value["password"] == derive_smtp_password(value["secret_access_key"], "us-east-1")
    assert value["app_canary"].startswith("canary-")  # unknown keys survive
    assert world.login().ok
    assert invariants.violations(world) == []


def test_consecutive_rotations_keep_two_keys_at_most(world: World) -> None:
    # GIVEN a rotated secret
    seen: list[str] = []
    for _ in range(4):
        # WHEN it is rotated again and again
        assert world.rotate().ok
        seen.append(world.value()["access_key_id"])
        # THEN each rotation leaves a new current key, the previous one inactive, nothing else
        assert invariants.violations(world) == []
        assert len(world.access_keys()) <= 2
    assert len(set(seen)) == 4
    assert world.access_keys() == {seen[-2]: "Inactive", seen[-1]: "Active"}
    assert world.value("AWSPREVIOUS")["access_key_id"] == seen[-2]


@pytest.mark.parametrize(
    ("action", "old_status"),
    [
        pytest.param("deactivate", "Inactive", id="deactivate"),
        pytest.param("delete", None, id="delete"),
        pytest.param("keep", "Active", id="keep"),
    ],
)
def test_old_key_action(
    make_world: Callable[..., World], action: str, old_status: str | None
) -> None:
    # GIVEN a function configured with an OLD_KEY_ACTION and a secret with a first key
    world = make_world(function_env={"OLD_KEY_ACTION": action})
    assert world.rotate().ok
    old = world.value()["access_key_id"]
    # WHEN it rotates
    assert world.rotate().ok
    # THEN the old key is treated per the policy and the new one is current
    new = world.value()["access_key_id"]
    assert world.access_keys().get(old) == old_status
    assert world.access_keys()[new] == "Active"
    # AND the next rotation still has room (an old key left active or inactive is deleted then)
    assert world.rotate().ok
    assert old not in world.access_keys()
    assert invariants.violations(world) == []


def test_secret_access_key_is_not_stored_when_turned_off(make_world: Callable[..., World]) -> None:
    world = make_world(function_env={"STORE_SECRET_ACCESS_KEY": "false"})
    assert world.rotate().ok
    assert world.rotate().ok
    value = world.value()
    assert "secret_access_key" not in value
    assert world.login().ok


def test_each_step_run_twice_changes_nothing_more(world: World) -> None:
    # GIVEN a first key, then a started rotation
    assert world.rotate().ok
    token = world.driver.start()
    # WHEN every step is invoked twice, as a lost Lambda response would cause
    for step in STEPS:
        for _ in range(2):
            record = world.driver.invoke(step, token)
            assert record.ok, record.error
        # THEN between steps the invariants hold
        assert invariants.violations(world) == []
    # AND the rotation ended exactly as a single run would: one new key, current, old inactive
    assert world.value()["access_key_id"] in world.access_keys()
    assert sorted(world.access_keys().values()) == ["Active", "Inactive"]
    assert sorted(world.driver.stages()[token]) == ["AWSCURRENT", "AWSPENDING"]


def test_propagation_delay_within_budget_is_waited_out(make_world: Callable[..., World]) -> None:
    # GIVEN SES needs 1 s to accept a new key and the test budget is 10 s
    world = make_world(propagation_delay=1.0)
    # WHEN the rotation runs
    rotation = world.rotate()
    # THEN testSecret retried until the key worked, once
    assert rotation.ok
    assert len(rotation.attempts) == 1
    tries = [a for a in world.ses.auth_attempts if not a.accepted]
    assert tries, "the server should have refused the key while it propagated"
    assert all(a.reason == "propagating" for a in tries)


def test_propagation_beyond_budget_fails_then_the_same_token_completes(
    make_world: Callable[..., World],
) -> None:
    # GIVEN SES needs longer than the function's SMTP budget
    world = make_world(propagation_delay=30.0, function_env={"SMTP_TEST_TIMEOUT_SECONDS": "1"})
    assert world.rotate().ok is False
    # THEN the first rotation failed in testSecret and nothing was promoted
    failed = world.driver.history[-1]
    assert failed.step == "testSecret"
    assert "still rejected" in str(failed.error)
    assert "access_key_id" not in world.value()  # AWSCURRENT is still the bootstrap value
    # WHEN the key has propagated and the service retries with the same token
    pending = world.driver.pending_version()
    world.ses.propagation_delay = 0.0
    rotation = world.rotate(token=pending)
    # THEN the rotation completes with the key created the first time, and no orphan is left
    assert rotation.ok
    assert rotation.token == pending
    assert len(world.access_keys()) == 1
    assert invariants.violations(world) == []


def test_adopting_a_hand_written_working_key(world: World) -> None:
    # GIVEN AWSCURRENT written by hand with a working key
    key = world.iam.create_access_key(UserName=world.user_name)["AccessKey"]
    value = world.value() | {
        "username": key["AccessKeyId"],
        "access_key_id": key["AccessKeyId"],
        "password": derive_smtp_password(key["SecretAccessKey"], world.region),
    }
    world.sm.put_secret_value(SecretId=world.secret_arn, SecretString=json.dumps(value))
    assert world.login().ok
    # WHEN it rotates
    assert world.rotate().ok
    # THEN the adopted key became the old key, deactivated; mail never stopped
    assert world.access_keys()[key["AccessKeyId"]] == "Inactive"
    assert invariants.violations(world) == []


def test_extra_regions_are_rederived_for_each_key(make_world: Callable[..., World]) -> None:
    world = make_world(bootstrap={"passwords": {"eu-west-1": None, "ap-southeast-2": None}})
    for _ in range(2):
        assert world.rotate().ok
        value = world.value()
        assert value["passwords"] == {
            region: derive_smtp_password(value["secret_access_key"], region)
            for region in ("eu-west-1", "ap-southeast-2")
        }


def test_implicit_tls_endpoint(make_world: Callable[..., World]) -> None:
    world = make_world(implicit_tls=True)
    assert world.rotate().ok
    assert world.value()["tls_mode"] == "tls"
    assert world.login().ok


def test_rotation_through_moto_server_endpoint(make_world: Callable[..., World]) -> None:
    # GIVEN AWS reached over HTTP through AWS_ENDPOINT_URL, as a deployed function reaches AWS
    world = make_world(moto_server=True)
    assert world.endpoint_url is not None
    assert world.endpoint_url.startswith("http://127.0.0.1:")
    # WHEN / THEN rotations work the same
    assert world.rotate().ok
    assert world.rotate().ok
    assert invariants.violations(world) == []


def test_event_files_drive_the_handler(world: World) -> None:
    # GIVEN the events/ files that `sam local invoke -e` uses, pointed at this world's secret
    token = world.driver.start()
    # WHEN each step's event file is invoked in order
    for step in STEPS:
        event = load_event(step, SecretId=world.secret_arn, ClientRequestToken=token)
        lambda_handler(event, LocalLambdaContext())  # type: ignore[arg-type]
    # THEN the rotation completed
    assert world.value()["access_key_id"] in world.access_keys()
    assert invariants.violations(world) == []
    assert LocalLambdaContext(timeout_seconds=1).get_remaining_time_in_millis() <= 1000


def test_test_message_is_sent_when_a_sender_is_configured(make_world: Callable[..., World]) -> None:
    # GIVEN a function configured to prove sending, not only login
    world = make_world(function_env={"SMTP_TEST_SENDER": "rotation@example.com"})
    # WHEN it rotates
    assert world.rotate().ok
    # THEN one message went to the SES mailbox simulator with the new key
    sent = world.ses.messages
    assert [(m.sender, m.recipients) for m in sent] == [
        ("rotation@example.com", ("success@simulator.amazonses.com",))
    ]
    assert sent[0].access_key_id == world.value()["access_key_id"]


@pytest.mark.parametrize(
    ("cold_steps", "reads"),
    [
        # warm: createSecret reads the (empty) pending version and AWSCURRENT from the service;
        # set, test and finish reuse the value it put and the AWSCURRENT it read
        pytest.param(False, 2, id="warm-container-reuses-version-values"),
        # cold: set, test and finish each read the pending value again, finish AWSCURRENT too
        pytest.param(True, 6, id="cold-container-per-step-reads-again"),
    ],
)
def test_version_values_are_read_once_per_warm_container(
    make_world: Callable[..., World], *, cold_steps: bool, reads: int
) -> None:
    # GIVEN a rotated secret and a function whose container is warm, or cold at every step
    def handler(event: dict[str, object], context: object) -> None:
        if cold_steps:
            versions.forget()
        lambda_handler(event, context)  # type: ignore[arg-type]

    world = make_world(handler=handler)
    assert world.rotate().ok
    # WHEN it is rotated again, counting the calls that reach the service
    with count_calls(account_id=world.driver.account_id, region=world.region) as calls:
        rotation = world.rotate()
    # THEN it completes either way, and a warm container reads each version's value once
    assert rotation.ok, rotation.attempts[-1].error
    assert calls["SecretsManager.GetSecretValue"] == reads
    assert calls["SecretsManager.DescribeSecret"] == 4  # the guard reads the stages every step
    assert invariants.violations(world) == []


def test_the_smtp_budget_follows_the_contexts_remaining_time(world: World) -> None:
    # GIVEN a Lambda context with 6 s left (5 s are kept back for the calls after the SMTP test)
    # and SES refusing the new key for longer than that
    world.ses.propagation_delay = 30.0

    def handler(event: dict[str, Any], context: Any) -> object:  # noqa: ARG001, ANN401 - Handler
        lambda_handler(event, LocalLambdaContext(timeout_seconds=6))  # type: ignore[arg-type]
        return None

    world.driver.handler = handler
    # WHEN a rotation runs / THEN testSecret gives up within the context's time, not the budget
    rotation = world.rotate(max_attempts=1)
    (failed,) = [step for step in rotation.attempts[-1].steps if not step.ok]
    assert failed.step == "testSecret"
    assert failed.seconds < 5
    assert invariants.violations(world, foreign=frozenset(world.access_keys())) == []
