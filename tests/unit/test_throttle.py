"""Token buckets and the throttle's answers, on moto clients (botocore's retry, no back-off)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sandbox.throttle import AWS_LIMITS, Limit, Throttle, TokenBucket, scaled
from sandbox.wire import without_backoff

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

# Two attempts per call: one throttled answer can be absorbed, two exhaust the call.
_TWO_ATTEMPTS = Config(retries={"mode": "standard", "total_max_attempts": 2})


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_admits_its_burst_then_its_rate() -> None:
    # GIVEN a bucket of 2 tokens refilled at 4 a second, on a clock that does not move
    clock = FakeClock()
    bucket = TokenBucket(rate=4, capacity=2, clock=clock)
    # WHEN three requests come at once THEN two are admitted
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    # WHEN a quarter second passes THEN exactly one more token is there
    clock.now += 0.25
    assert [bucket.take(), bucket.take()] == [True, False]
    # WHEN a long time passes THEN the bucket holds no more than its capacity
    clock.now += 60
    assert [bucket.take() for _ in range(3)] == [True, True, False]


def test_aws_limits_name_each_operation_once_and_writes_share_fifty() -> None:
    throttle = Throttle(AWS_LIMITS)  # raises if an operation were in two limits
    writes = next(limit for limit in throttle.limits if "writes" in limit.name)
    assert writes.rate == writes.capacity == 50
    assert {"SecretsManager.PutSecretValue", "SecretsManager.UpdateSecretVersionStage"} <= (
        writes.operations
    )
    assert all(limit.rate > 0 for limit in scaled(AWS_LIMITS, 0.1))
    with pytest.raises(ValueError, match="in two limits"):
        Throttle([*AWS_LIMITS, Limit(name="x", rate=1, operations=writes.operations)])


def _iam_client(iam: IAMClient) -> IAMClient:  # noqa: ARG001 - needs moto active
    client = boto3.client("iam", config=_TWO_ATTEMPTS)
    without_backoff(client)
    return client


def test_throttled_answer_is_retried_by_botocore_and_booked_as_absorbed(iam: IAMClient) -> None:
    # GIVEN a client throttled to one ListUsers a second (burst 1) on a frozen clock
    client = _iam_client(iam)
    clock = FakeClock()
    limit = Limit(name="IAM ListUsers", rate=1, operations=frozenset({"IAM.ListUsers"}))
    throttle = Throttle([limit], clock=clock)
    with throttle.attached(client):
        # WHEN the first call takes the token
        client.list_users()

        # AND the second is throttled once, then the clock moves before botocore's retry
        # (needs-retry runs after every attempt: move it once only)
        moved: list[bool] = []

        def refill(**_: object) -> None:
            if not moved:
                moved.append(True)
                clock.now += 1

        client.meta.events.register("needs-retry.iam", refill, unique_id="refill")
        answer = client.list_users()
        client.meta.events.unregister("needs-retry.iam", unique_id="refill")
        # AND a third call finds no token on either attempt
        with pytest.raises(ClientError) as caught:
            client.list_users()
        # AND an operation no limit names is admitted
        client.list_groups()
    # THEN botocore retried the throttled call and the caller never saw it
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1
    assert caught.value.response["Error"]["Code"] == "Throttling"
    assert throttle.throttled == {"IAM.ListUsers": 3}
    assert throttle.absorbed == {"IAM.ListUsers": 1}
    assert throttle.exhausted == {"IAM.ListUsers": 1}
    assert throttle.admitted == {"IAM.ListUsers": 2, "IAM.ListGroups": 1}
    # AND once detached the client is not throttled
    client.list_users()
    assert throttle.admitted["IAM.ListUsers"] == 2


def test_secrets_manager_throttling_speaks_json(iam: IAMClient) -> None:  # noqa: ARG001 - moto
    # GIVEN a Secrets Manager client with no token for DescribeSecret at all
    client = boto3.client("secretsmanager", config=_TWO_ATTEMPTS)
    without_backoff(client)
    arn = client.create_secret(Name="s", SecretString="{}")["ARN"]
    clock = FakeClock()
    limit = Limit(
        name="d", rate=1, burst=0, operations=frozenset({"SecretsManager.DescribeSecret"})
    )
    # WHEN it is called THEN it fails as Secrets Manager fails a throttled request
    with (
        Throttle([limit], clock=clock).attached(client) as throttle,
        pytest.raises(ClientError) as caught,
    ):
        client.describe_secret(SecretId=arn)
    assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    assert throttle.exhausted == {"SecretsManager.DescribeSecret": 1}


def test_buckets_are_shared_by_threads_without_losing_a_token() -> None:
    # GIVEN 100 tokens and no refill, taken by 8 threads at once
    bucket = TokenBucket(rate=0.0, capacity=100, clock=FakeClock())
    taken: list[bool] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(50):
            result = bucket.take()
            with lock:
                taken.append(result)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    # THEN exactly 100 requests were admitted
    assert taken.count(True) == 100
    assert len(taken) == 400
