"""Rotations that must fail cleanly (and change nothing), and crashes that must heal."""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

import certifi
import pytest

from rotation_handler import app
from rotation_handler.exceptions import (
    BadEventError,
    ForeignKeyError,
    NotBoundError,
    SecretValueError,
    SmtpTestError,
    StagingError,
    UnknownStepError,
)
from sandbox import invariants
from sandbox.faults import Fault, FaultKind, inject
from sandbox.secrets_manager import STEPS, LocalLambdaContext

if TYPE_CHECKING:
    from collections.abc import Callable

    from sandbox.world import World


def snapshot(world: World) -> tuple[dict[str, str], dict[str, list[str]], list[str]]:
    """What a failed step must leave untouched: keys, staging labels, version values."""
    values = sorted(v.get("secret_string", "") for v in world.driver._secret().versions.values())
    return world.access_keys(), world.driver.stages(), values


def put_current(world: World, value: dict[str, Any] | str) -> None:
    text = value if isinstance(value, str) else json.dumps(value)
    world.sm.put_secret_value(SecretId=world.secret_arn, SecretString=text)


BOOT = {"region": "us-east-1", "host": "localhost"}


@pytest.mark.parametrize(
    ("current", "error", "message"),
    [
        pytest.param("{not json", SecretValueError, "not valid JSON", id="invalid-json"),
        pytest.param({**BOOT}, SecretValueError, "iam_user_name", id="missing-user"),
        pytest.param(
            {**BOOT, "iam_user_name": "nobody"},
            NotBoundError,
            "bound to ses-smtp-user",
            id="other-user",
        ),
        pytest.param(
            {**BOOT, "iam_user_name": "ses-smtp-user", "region": "mars-1"},
            SecretValueError,
            "region",
            id="bad-region",
        ),
        pytest.param(
            {
                "iam_user_name": "ses-smtp-user",
                "region": "eu-west-1",
                "host": "email-smtp.us-east-1.amazonaws.com",
            },
            SecretValueError,
            "region us-east-1",
            id="host-of-another-region",
        ),
    ],
)
def test_bad_secret_value_fails_and_changes_nothing(
    world: World, current: dict[str, Any] | str, error: type[Exception], message: str
) -> None:
    # GIVEN an AWSCURRENT value that cannot be rotated, with the port of the local server
    if isinstance(current, dict):
        current = {**current, "port": world.ses.port}
    put_current(world, current)
    token = world.driver.start()
    before = snapshot(world)
    # WHEN createSecret runs
    record = world.driver.invoke("createSecret", token)
    # THEN it fails with a clear error and nothing changed
    assert isinstance(record.error, error), record.error
    assert message in str(record.error)
    assert snapshot(world) == before


def test_unknown_iam_user_fails_and_changes_nothing(make_world: Callable[..., World]) -> None:
    world = make_world(function_env={"SMTP_IAM_USER_NAME": None})
    put_current(world, {**BOOT, "iam_user_name": "ghost", "port": world.ses.port})
    token = world.driver.start()
    before = snapshot(world)
    record = world.driver.invoke("createSecret", token)
    assert "IAM user ghost does not exist" in str(record.error)
    assert snapshot(world) == before


def test_secret_the_function_is_not_bound_to_is_refused(make_world: Callable[..., World]) -> None:
    world = make_world(
        function_env={
            "SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:other-AbCdEf"
        }
    )
    token = world.driver.start()
    before = snapshot(world)
    for step in STEPS:
        record = world.driver.invoke(step, token)
        assert isinstance(record.error, NotBoundError)
        assert "refuses to rotate" in str(record.error)
    assert snapshot(world) == before


@pytest.mark.parametrize(
    ("event", "error"),
    [
        pytest.param({"Step": "dropSecret"}, UnknownStepError, id="unknown-step"),
        pytest.param({"ClientRequestToken": None}, BadEventError, id="missing-token"),
        pytest.param(
            {"ClientRequestToken": "not-a-version"}, StagingError, id="token-not-a-version"
        ),
    ],
)
def test_bad_event_is_refused(
    world: World, event: dict[str, str | None], error: type[Exception]
) -> None:
    token = world.driver.start()
    before = snapshot(world)
    full = {
        "SecretId": world.secret_arn,
        "ClientRequestToken": token,
        "Step": "createSecret",
        **event,
    }
    with pytest.raises(error):
        app.lambda_handler(
            {k: v for k, v in full.items() if v is not None},
            LocalLambdaContext(),  # type: ignore[arg-type]
        )
    assert snapshot(world) == before


def test_token_that_is_not_pending_is_refused(world: World) -> None:
    # GIVEN a completed rotation, whose old version is now AWSPREVIOUS
    first = world.rotate().token
    assert world.rotate().ok
    before = snapshot(world)
    # WHEN a step is invoked with the AWSPREVIOUS version's token
    record = world.driver.invoke("createSecret", first)
    # THEN it is refused (an old version is never promoted again), and nothing changed
    assert isinstance(record.error, StagingError)
    assert "is AWSPREVIOUS" in str(record.error)
    assert snapshot(world) == before


def test_rotation_disabled_is_refused(world: World) -> None:
    token = world.driver.start()
    world.driver._secret().rotation_enabled = False
    record = world.driver.invoke("createSecret", token)
    assert "rotation is not enabled" in str(record.error)


def test_foreign_key_holding_the_limit_is_named_and_untouched(world: World) -> None:
    # GIVEN a rotated secret and a second key created by hand (not in any version)
    assert world.rotate().ok
    foreign = world.iam.create_access_key(UserName=world.user_name)["AccessKey"]["AccessKeyId"]
    before = snapshot(world)
    # WHEN the next rotation runs
    rotation = world.rotate(max_attempts=1)
    # THEN createSecret fails naming the key and what to do; the key and the secret are untouched
    error = rotation.attempts[-1].error
    assert isinstance(error, ForeignKeyError)
    assert foreign in str(error)
    assert "delete-access-key" in str(error)
    assert "adopt" in str(error)
    assert snapshot(world)[0] == before[0]
    assert invariants.violations(world, foreign=frozenset({foreign})) == []


def test_wrong_region_never_promotes(make_world: Callable[..., World]) -> None:
    # GIVEN a secret asking for eu-west-1 passwords while the SMTP endpoint is us-east-1's
    world = make_world(
        bootstrap={"region": "eu-west-1"}, function_env={"SMTP_TEST_TIMEOUT_SECONDS": "1"}
    )
    # WHEN it rotates
    rotation = world.rotate(max_attempts=1)
    # THEN testSecret rejects the login and AWSCURRENT keeps the bootstrap value
    assert not rotation.ok
    assert world.driver.history[-1].step == "testSecret"
    assert isinstance(world.driver.history[-1].error, SmtpTestError)
    assert "access_key_id" not in world.value()


@pytest.mark.parametrize(
    ("ses_options", "use_public_ca", "expected"),
    [
        pytest.param({}, True, "certificate", id="untrusted-certificate"),
        pytest.param({"offer_starttls": False}, False, "STARTTLS", id="no-starttls"),
    ],
)
def test_tls_failures_fail_fast(
    make_world: Callable[..., World],
    monkeypatch: pytest.MonkeyPatch,
    ses_options: dict[str, Any],
    *,
    use_public_ca: bool,
    expected: str,
) -> None:
    # GIVEN a generous SMTP budget and a TLS problem that retrying cannot fix
    world = make_world(ses_options=ses_options, function_env={"SMTP_TEST_TIMEOUT_SECONDS": "20"})
    if use_public_ca:
        monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    # WHEN the rotation runs
    started = time.monotonic()
    rotation = world.rotate(max_attempts=1)
    # THEN testSecret fails at once with the probe's message, and nothing is promoted
    failed = world.driver.history[-1]
    assert (failed.step, rotation.ok) == ("testSecret", False)
    assert expected in str(failed.error)
    assert time.monotonic() - started < 10
    assert "access_key_id" not in world.value()


@pytest.mark.parametrize(
    ("client", "operation", "kind", "attempts"),
    [
        pytest.param(
            "iam", "CreateAccessKey", FaultKind.LOST_ANSWER, 2, id="create-key-answer-lost"
        ),
        # createSecret reads the version back, finds its value stored, and carries on
        pytest.param("sm", "PutSecretValue", FaultKind.LOST_ANSWER, 1, id="put-value-answer-lost"),
        pytest.param("sm", "PutSecretValue", FaultKind.BEFORE, 2, id="put-value-failed"),
        pytest.param(
            "sm", "UpdateSecretVersionStage", FaultKind.LOST_ANSWER, 2, id="promote-answer-lost"
        ),
    ],
)
def test_crash_at_an_aws_call_heals_on_retry(
    world: World, client: str, operation: str, kind: FaultKind, attempts: int
) -> None:
    # GIVEN a steady state: a current key and an old one
    assert world.rotate().ok
    assert world.rotate().ok
    runtime = app.runtime()
    # WHEN the call fails once during the next rotation and the service retries with the token
    with inject(getattr(runtime, client), Fault(operation, kind)) as fault:
        rotation = world.rotate()
    # THEN the fault fired, the retry completed, and no orphan key is left
    assert fault.fired == 1
    assert len(rotation.attempts) == attempts
    assert rotation.ok
    assert invariants.violations(world) == []
    assert sorted(world.access_keys().values()) == ["Active", "Inactive"]


def test_unknown_token_format_is_only_a_version_id(world: World) -> None:
    token = str(uuid.uuid4())
    record = world.driver.invoke("setSecret", token)
    assert isinstance(record.error, StagingError)
    assert token in str(record.error)
