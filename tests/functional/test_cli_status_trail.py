"""``status`` tells whether rotation notices can arrive (a trail that logs management events).

CloudTrail is moto's (with :mod:`sandbox.moto_fidelity`'s default event selectors); a refused call
is IAM's answer, given by a ``before-send`` hook on the default session's clients, through
botocore's own parsing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from sandbox.wire import RawBody
from ses_smtp_rotator import _status_trail
from ses_smtp_rotator.cli import EXIT_OK
from tests.functional.test_cli_status import Status, report, status

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sandbox.world import World

__all__ = ["status"]  # the fixture, shared with test_cli_status.py

OTHER_REGION = "eu-west-1"


def make_trail(world: World, name: str, *, region: str | None = None, **options: Any) -> str:  # noqa: ANN401 - CreateTrail's options
    """Create a trail (and its bucket) in ``region`` (the world's by default); return its ARN."""
    session = boto3.session.Session(region_name=region or world.region)
    bucket = f"{name}-logs"
    where = session.region_name
    config: Any = {"CreateBucketConfiguration": {"LocationConstraint": where}}
    session.client("s3").create_bucket(Bucket=bucket, **({} if where == "us-east-1" else config))
    cloudtrail = session.client("cloudtrail")
    return str(cloudtrail.create_trail(Name=name, S3BucketName=bucket, **options)["TrailARN"])


def start_logging(world: World, arn: str, *, region: str | None = None) -> None:
    session = boto3.session.Session(region_name=region or world.region)
    session.client("cloudtrail").start_logging(Name=arn)


@pytest.fixture
def rotated(world: World) -> World:
    assert world.rotate().ok
    return world


def test_without_a_trail_status_warns_and_still_exits_0(rotated: World, status: Status) -> None:
    # GIVEN a healthy rotated secret in an account with no CloudTrail trail
    # WHEN status runs
    code, out = status(rotated)
    # THEN it warns that no notice can arrive, and exits 0: the secret is healthy
    assert code == EXIT_OK
    assert "healthy: no problem found" in out
    assert "WARNING: rotation notices cannot arrive: no CloudTrail trail applies to" in out
    # AND the JSON says the same
    code, found = report(status, rotated)
    assert code == EXIT_OK
    assert found["healthy"] is True
    assert found["notices"]["can_arrive"] is False
    assert found["notices"]["region"] == rotated.region


def test_a_multi_region_trail_that_is_logging_lets_notices_arrive(
    rotated: World, status: Status
) -> None:
    # GIVEN a multi-region trail made in another region, logging (default selectors)
    arn = make_trail(rotated, "org-trail", region=OTHER_REGION, IsMultiRegionTrail=True)
    start_logging(rotated, arn, region=OTHER_REGION)
    # WHEN status runs / THEN notices can arrive, through that trail
    code, found = report(status, rotated)
    assert code == EXIT_OK
    assert found["notices"] == {
        "can_arrive": True,
        "region": rotated.region,
        "trail": arn,
        "reason": "CloudTrail trail org-trail logs management events",
        "missing_permission": None,
    }
    assert "notices        can arrive: CloudTrail trail org-trail" in status(rotated)[1]


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        pytest.param("stopped", "trail local-trail is not logging", id="not-logging"),
        pytest.param(
            "data-only", "trail local-trail logs no management (write) events", id="data-only"
        ),
        pytest.param("read-only", "logs no management (write) events", id="read-only"),
        pytest.param("elsewhere", "no CloudTrail trail applies to", id="single-region-elsewhere"),
    ],
)
def test_a_trail_that_cannot_carry_the_notices_is_named(
    rotated: World, status: Status, setup: str, reason: str
) -> None:
    # GIVEN a trail that is stopped, takes no (write) management events, or covers another region
    region = OTHER_REGION if setup == "elsewhere" else rotated.region
    arn = make_trail(rotated, "local-trail", region=region)
    if setup != "stopped":
        start_logging(rotated, arn, region=region)
    selectors = {
        "data-only": [{"IncludeManagementEvents": False, "ReadWriteType": "All"}],
        "read-only": [{"IncludeManagementEvents": True, "ReadWriteType": "ReadOnly"}],
    }.get(setup)
    if selectors:
        client = boto3.session.Session(region_name=region).client("cloudtrail")
        client.put_event_selectors(TrailName=arn, EventSelectors=selectors)
    # WHEN status runs / THEN notices cannot arrive, the reason naming the trail; exit code 0
    code, found = report(status, rotated)
    assert code == EXIT_OK
    assert found["notices"]["can_arrive"] is False
    assert reason in found["notices"]["reason"]


def test_advanced_selectors_with_management_events_let_notices_arrive(rotated: World) -> None:
    # GIVEN a logging trail whose advanced event selectors take management events
    arn = make_trail(rotated, "advanced-trail")
    start_logging(rotated, arn)
    client = boto3.session.Session(region_name=rotated.region).client("cloudtrail")
    client.put_event_selectors(
        TrailName=arn,
        AdvancedEventSelectors=[
            {
                "Name": "management",
                "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}],
            }
        ],
    )
    # WHEN the check runs / THEN notices can arrive
    assert _status_trail.check(rotated.region).can_arrive is True


def denied(request: Any, **_: Any) -> AWSResponse:  # noqa: ANN401 - botocore hook
    """CloudTrail's answer to a caller whose policy lacks the action."""
    body = b'{"__type": "AccessDeniedException", "Message": "not authorized"}'
    headers = HTTPHeaders()
    headers["Content-Type"] = "application/x-amz-json-1.1"
    return AWSResponse(str(request.url), 400, headers, RawBody(body))


@pytest.fixture
def deny() -> Iterator[Callable[[str], None]]:
    """Deny one CloudTrail action to every client made from the default session."""
    events = boto3.DEFAULT_SESSION.events if boto3.DEFAULT_SESSION else None
    if events is None:
        boto3.setup_default_session()
        events = boto3.DEFAULT_SESSION.events  # type: ignore[union-attr]
    registered: list[str] = []

    def register(operation: str) -> None:
        name = f"before-send.cloudtrail.{operation}"
        hook: Any = denied  # before-send may answer (botocore types its hooks as returning None)
        events.register_first(name, hook, unique_id=f"deny-{operation}")
        registered.append(operation)

    yield register
    for operation in registered:
        events.unregister(f"before-send.cloudtrail.{operation}", unique_id=f"deny-{operation}")


@pytest.mark.parametrize(
    ("operation", "permission"),
    [
        pytest.param("DescribeTrails", "cloudtrail:DescribeTrails", id="describe-trails"),
        pytest.param("GetTrailStatus", "cloudtrail:GetTrailStatus", id="get-trail-status"),
    ],
)
def test_a_refused_call_is_cannot_tell_naming_the_permission_never_a_failure(
    rotated: World,
    status: Status,
    deny: Callable[[str], None],
    operation: str,
    permission: str,
) -> None:
    # GIVEN a logging trail, and a caller who may not make one of the calls
    start_logging(rotated, make_trail(rotated, "local-trail"))
    deny(operation)
    # WHEN status runs / THEN it cannot tell, names the permission, and still exits 0
    code, out = status(rotated)
    assert code == EXIT_OK
    assert f"cannot tell whether rotation notices can arrive: {permission} was refused" in out
    code, found = report(status, rotated)
    assert found["notices"]["can_arrive"] is None
    assert found["notices"]["missing_permission"] == permission
