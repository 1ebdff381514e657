"""The function's own failure notice, in the local world: one event per failing rotation.

The event goes to moto's default event bus; a rule made from the template's own pattern
(``RotationStepFailedRule``) hands it to an SQS queue, from which the test reads what the notice
topic would get. The same event is checked with the pattern matcher of the template tests and
scanned for secret material.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from rotation_handler import notices
from sandbox import invariants
from sandbox.calls import count_calls
from sandbox.faults import Fault, FaultKind, inject
from tests import leakscan
from tests.unit.test_template_notices import SECRET_ARN, _pattern, matches
from tests.unit.test_template_policy import TEMPLATE, load_template

if TYPE_CHECKING:
    from collections.abc import Callable

    from sandbox.world import World

# Each notice waits at most this long in the queue: moto delivers at PutEvents, at once.
_RECEIVE_WAIT = 0


def template_pattern(secret_arn: str) -> dict[str, Any]:
    """The single template's rule pattern for the function's notice, for ``secret_arn``."""
    template = load_template(TEMPLATE.read_text(encoding="utf-8"))
    pattern = _pattern(template, "RotationStepFailedRule")
    rendered: dict[str, Any] = json.loads(json.dumps(pattern).replace(SECRET_ARN, secret_arn))
    return rendered


@pytest.fixture
def notices_seen(world: World) -> Callable[[], list[dict[str, Any]]]:
    """Route the template's pattern to a queue in moto; return a reader of what arrived."""
    session = boto3.session.Session(region_name=world.region)
    sqs, events = session.client("sqs"), session.client("events")
    queue_url = sqs.create_queue(QueueName="notices")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    events.put_rule(Name="notice", EventPattern=json.dumps(template_pattern(world.secret_arn)))
    events.put_targets(
        Rule="notice", Targets=[{"Id": "q", "Arn": queue_arn["Attributes"]["QueueArn"]}]
    )
    seen: list[dict[str, Any]] = []

    def read() -> list[dict[str, Any]]:
        while True:
            answer = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=_RECEIVE_WAIT
            )
            messages = answer.get("Messages", [])
            if not messages:
                return seen
            for message in messages:
                seen.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    return read


def _tags(world: World) -> dict[str, str]:
    described = world.sm.describe_secret(SecretId=world.secret_arn)
    return {tag["Key"]: tag["Value"] for tag in described.get("Tags", [])}


def test_a_failing_rotation_notifies_once_naming_the_step_and_the_cause(
    world: World, notices_seen: Callable[[], list[dict[str, Any]]]
) -> None:
    # GIVEN a steady state, then SES answering 421 to every login of the next rotation
    assert world.rotate().ok
    with inject(world.ses, Fault("AUTH", FaultKind.SMTP_421, times=99)):
        # WHEN Secrets Manager tries the rotation three times with the same token
        rotation = world.rotate(max_attempts=3)
    assert not rotation.ok
    assert len(rotation.attempts) == 3
    # THEN one notice arrived for the three failures
    (event,) = notices_seen()
    detail = event["detail"]
    assert (event["source"], event["detail-type"]) == (notices.SOURCE, notices.DETAIL_TYPE)
    assert detail["secret"] == world.secret_arn
    assert detail["app"] == world.secret_arn.split(":")[-1].rsplit("-", 1)[0]
    assert detail["step"] == "testSecret"
    assert detail["error"] == "SmtpTestError"
    assert "421" in detail["cause"]
    assert len(detail["cause"]) <= notices.MAX_CAUSE
    # AND it matches the template's rule, and holds no secret
    assert matches(template_pattern(world.secret_arn), event)
    assert leakscan.find_leaks([json.dumps(event)], world.secret_material()) == []
    # AND the secret carries the streak's mark
    assert _tags(world)[notices.FAILING_TAG] == notices.digest(rotation.token)

    # WHEN SES heals and the service retries the same rotation
    attempt = world.driver.attempt(rotation.token)
    # THEN it completes, sends nothing more, and the mark is gone
    assert attempt.ok, attempt.steps[-1].error
    assert notices_seen() == [event]
    assert notices.FAILING_TAG not in _tags(world)
    assert invariants.violations(world) == []


def test_a_new_rotation_that_fails_is_a_new_streak(
    world: World, notices_seen: Callable[[], list[dict[str, Any]]]
) -> None:
    # GIVEN a rotation that failed (one notice), cancelled as the runbook says
    assert world.rotate().ok
    with inject(world.ses, Fault("AUTH", FaultKind.SMTP_421, times=99)):
        first = world.rotate(max_attempts=2)
        world.cancel_rotation(first.token)
        # WHEN the next rotation (another token) fails too
        second = world.rotate(max_attempts=2)
    # THEN each rotation sent exactly one notice
    assert not first.ok
    assert not second.ok
    seen = notices_seen()
    assert [event["detail"]["rotation"] for event in seen] == [
        notices.digest(first.token),
        notices.digest(second.token),
    ]


def test_a_healthy_rotation_makes_no_call_for_notices(
    world: World, notices_seen: Callable[[], list[dict[str, Any]]]
) -> None:
    # GIVEN a steady state
    assert world.rotate().ok
    assert world.rotate().ok
    # WHEN the next rotation succeeds
    with count_calls(account_id=world.driver.account_id, region=world.region) as calls:
        assert world.rotate().ok
    # THEN no tagging call was made, no notice was sent, and the count is the steady one
    assert calls["SecretsManager.TagResource"] == 0
    assert calls["SecretsManager.UntagResource"] == 0
    assert calls.total() <= 15
    assert notices_seen() == []


def test_a_notice_that_cannot_be_sent_never_hides_the_steps_error(
    world: World, notices_seen: Callable[[], list[dict[str, Any]]]
) -> None:
    # GIVEN tagging the secret fails (the notice goes out, its mark does not stick)
    from rotation_handler import app  # noqa: PLC0415 - the world's runtime, built at its first step

    assert world.rotate().ok
    runtime = app.runtime()
    with (
        inject(world.ses, Fault("AUTH", FaultKind.SMTP_421, times=99)),
        inject(runtime.sm, Fault("TagResource", FaultKind.BEFORE, times=99)),
    ):
        # WHEN a step fails twice
        rotation = world.rotate(max_attempts=2)
    # THEN each failure is the step's own error, and without the mark each one notified
    errors = [attempt.steps[-1].error for attempt in rotation.attempts]
    assert [type(error).__name__ for error in errors] == ["SmtpTestError", "SmtpTestError"]
    assert len(notices_seen()) == 2
