"""The old key's grace period: it keeps working after a rotation until the sweep retires it.

Grace periods here are ``1h`` (the sweep must wait) or ``1s`` (the test waits 1.5 s, bounded, so
the period has passed); ``0`` is the behaviour without a grace period.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from rotation_handler import app, records
from rotation_handler.exceptions import BadEventError, NotBoundError
from sandbox import invariants
from sandbox.faults import Fault, FaultKind, LambdaDiedError, inject
from sandbox.secrets_manager import LocalLambdaContext

if TYPE_CHECKING:
    from collections.abc import Callable

    from sandbox.world import World

PAST_A_ONE_SECOND_GRACE = 1.5


def rotated(make_world: Callable[..., World], *, grace: str, action: str = "deactivate") -> World:
    """A world rotated twice under the grace period: AWSPREVIOUS holds the old key."""
    world = make_world(function_env={"OLD_KEY_GRACE_PERIOD": grace, "OLD_KEY_ACTION": action})
    assert world.rotate().ok
    assert world.rotate().ok
    return world


def old_key(world: World) -> str:
    return str(world.value("AWSPREVIOUS")["access_key_id"])


def test_without_a_grace_period_the_old_key_is_retired_at_finish(
    make_world: Callable[..., World],
) -> None:
    world = rotated(make_world, grace="0")
    assert world.access_keys()[old_key(world)] == "Inactive"
    # AND the sweep finds nothing left to do
    assert world.sweep()["Result"] == "already-retired"


def test_the_old_key_works_until_the_sweep_after_its_grace_period(
    make_world: Callable[..., World],
) -> None:
    # GIVEN a rotation under a one-second grace period
    world = rotated(make_world, grace="1s")
    old = old_key(world)
    # THEN the old key is still Active and logs in next to the new one
    assert world.access_keys()[old] == "Active"
    assert world.login("AWSPREVIOUS").ok
    assert world.login().ok
    # WHEN the period has passed and the sweep runs
    time.sleep(PAST_A_ONE_SECOND_GRACE)
    summary = world.sweep()
    # THEN it deactivates the old key, and only it
    assert summary["Result"] == "retired: deactivate"
    assert summary["AccessKeyId"] == old
    assert world.access_keys()[old] == "Inactive"
    assert world.login().ok
    # AND a repeated sweep changes nothing
    before = world.access_keys()
    assert world.sweep()["Result"] == "already-retired"
    assert world.access_keys() == before
    assert invariants.violations(world) == []


def test_a_sweep_inside_the_grace_period_changes_nothing(
    make_world: Callable[..., World],
) -> None:
    world = rotated(make_world, grace="1h")
    before = world.access_keys()
    for _ in range(2):
        summary = world.sweep()
        assert summary["Result"] == "in-grace-period"
        assert "RetireAfter" in summary
    assert world.access_keys() == before
    assert world.login("AWSPREVIOUS").ok


def test_delete_after_the_grace_period(make_world: Callable[..., World]) -> None:
    world = rotated(make_world, grace="1s", action="delete")
    old = old_key(world)
    time.sleep(PAST_A_ONE_SECOND_GRACE)
    assert world.sweep()["Result"] == "retired: delete"
    assert old not in world.access_keys()
    assert world.sweep()["Result"] == "already-retired"


def test_keep_is_never_retired_by_the_sweep(make_world: Callable[..., World]) -> None:
    world = rotated(make_world, grace="1s", action="keep")
    time.sleep(PAST_A_ONE_SECOND_GRACE)
    assert world.sweep()["Result"].startswith("kept")
    assert world.access_keys()[old_key(world)] == "Active"


def test_a_rotation_inside_the_window_retires_the_old_key_early(
    make_world: Callable[..., World], caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN the old key in its grace period (two keys: the limit)
    world = rotated(make_world, grace="1h")
    old = old_key(world)
    # WHEN a rotation starts anyway (a leak, say)
    assert world.rotate(max_attempts=1).ok
    # THEN it completes with at most two keys, having deleted the old key with a warning
    assert old not in world.access_keys()
    assert len(world.access_keys()) == invariants.MAX_KEYS
    assert "grace period it was in ends now" in caplog.text
    assert invariants.violations(world) == []


def test_the_sweep_warns_when_the_old_key_was_used_after_promotion(
    make_world: Callable[..., World], caplog: pytest.LogCaptureFixture
) -> None:
    world = rotated(make_world, grace="1s")
    # WHEN a consumer that never re-read the secret logs in with the old key after promotion
    assert world.login("AWSPREVIOUS").ok
    time.sleep(PAST_A_ONE_SECOND_GRACE)
    world.sweep()
    # THEN the sweep says so (GetAccessKeyLastUsed) as it retires the key
    assert "did not pick up the new password" in caplog.text


def test_the_sweep_never_touches_the_live_key_after_a_stack_update(
    make_world: Callable[..., World],
) -> None:
    # GIVEN a bootstrap value written over AWSCURRENT: AWSPREVIOUS's key is the live one
    world = rotated(make_world, grace="1s")
    world.write_bootstrap_over_current()
    live = world.value("AWSPREVIOUS")["access_key_id"]
    time.sleep(PAST_A_ONE_SECOND_GRACE)
    # WHEN the sweep runs / THEN it leaves the live key alone
    assert world.sweep()["Result"].startswith("nothing-to-retire")
    assert world.access_keys()[live] == "Active"


def test_the_sweep_leaves_a_key_made_by_hand_alone(make_world: Callable[..., World]) -> None:
    world = make_world(function_env={"OLD_KEY_GRACE_PERIOD": "1s"})
    assert world.rotate().ok
    made = world.iam.create_access_key(UserName=world.user_name)["AccessKey"]["AccessKeyId"]
    time.sleep(PAST_A_ONE_SECOND_GRACE)
    assert world.sweep()["Result"] == "nothing-to-retire"
    assert world.access_keys()[made] == "Active"
    world.iam.delete_access_key(UserName=world.user_name, AccessKeyId=made)


@pytest.mark.parametrize(
    ("operation", "client"),
    [
        ("DescribeSecret", "sm"),
        ("GetSecretValue", "sm"),
        ("ListAccessKeys", "iam"),
        ("GetUser", "iam"),
        ("GetAccessKeyLastUsed", "iam"),
        ("UpdateAccessKey", "iam"),
    ],
)
@pytest.mark.parametrize("kind", [FaultKind.DIES_BEFORE, FaultKind.DIES_AFTER])
def test_a_sweep_that_dies_at_any_call_heals_on_the_next(
    make_world: Callable[..., World], operation: str, client: str, kind: FaultKind
) -> None:
    world = rotated(make_world, grace="1s")
    old = old_key(world)
    time.sleep(PAST_A_ONE_SECOND_GRACE)
    target = getattr(app.runtime(), client)
    with inject(target, Fault(operation, kind)) as fault, pytest.raises(LambdaDiedError):
        world.sweep()
    assert fault.fired == 1
    assert world.access_keys()[world.value()["access_key_id"]] == "Active"
    assert world.sweep()["Result"] in {"retired: deactivate", "already-retired"}
    assert world.sweep()["Result"] == "already-retired"
    assert world.access_keys()[old] == "Inactive"
    assert invariants.violations(world) == []


def test_finish_run_again_keeps_the_recorded_start(make_world: Callable[..., World]) -> None:
    # GIVEN a rotation whose promotion's answer was lost (the service retries finishSecret)
    world = make_world(function_env={"OLD_KEY_GRACE_PERIOD": "1h"})
    assert world.rotate().ok
    with inject(app.runtime().sm, Fault("UpdateSecretVersionStage", FaultKind.LOST_ANSWER)):
        rotation = world.rotate()
    assert rotation.ok
    # THEN one record names the old key (the second run did not restart its period)
    tags = world.iam.list_user_tags(UserName=world.user_name)["Tags"]
    record = records.UserRecords.from_tags({tag["Key"]: tag["Value"] for tag in tags})
    assert record.retirement is not None
    assert record.retirement.access_key_id == world.value("AWSPREVIOUS")["access_key_id"]


def test_bad_sweep_events_are_refused(world: World) -> None:
    handler, context = world.driver.handler, LocalLambdaContext()
    with pytest.raises(BadEventError, match="SecretId"):
        handler({"Action": "RetireOldKeys"}, context)
    with pytest.raises(BadEventError, match="unknown Action"):
        handler({"Action": "Rotate", "SecretId": world.secret_arn}, context)
    other = world.sm.create_secret(Name="someone-else", SecretString="{}")["ARN"]
    with pytest.raises(NotBoundError):
        handler({"Action": "RetireOldKeys", "SecretId": other}, context)


def test_a_grace_period_not_shorter_than_the_interval_is_reported(
    make_world: Callable[..., World], caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN rotation every 30 days (the world's rules) and a 30-day grace period
    world = rotated(make_world, grace="30d")
    # THEN finishSecret said the old key will be retired before its window ends
    assert "not shorter than the rotation interval" in caplog.text
    assert world.access_keys()[old_key(world)] == "Active"
