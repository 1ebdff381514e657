"""A stack update that changes ``IamUserName`` rotates (``Custom::SmtpUserChange``), played locally.

CloudFormation's side is played as ``template.yaml`` orders it: the new bootstrap value is written
over ``AWSCURRENT``, the function's environment names the new user, then the resource's Update
reaches the function, which asks Secrets Manager to rotate its own secret. ``RotateSecret`` runs
the four steps through the local driver (:mod:`sandbox.rotation_service`), as the service does.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from rotation_handler.user_change import PHYSICAL_ID, RESOURCE_TYPE
from sandbox import answers
from sandbox.fleet import fleet_env

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sandbox.world import World

JOIN = 30.0  # seconds: the rotation RotateSecret started runs on a thread of its own
NEW_USER = "ses-smtp-user-2"


@pytest.fixture
def cloudformation() -> Iterator[answers.CloudFormationStandIn]:
    with answers.CloudFormationStandIn() as cfn:
        yield cfn


def user_change(
    cfn: answers.CloudFormationStandIn,
    request_type: str,
    *,
    new: str,
    old: str | None = None,
    **more: str,
) -> dict[str, Any]:
    """The request CloudFormation sends for the stack's RotateOnUserChange resource."""
    return cfn.request(
        request_type,
        resource_type=RESOURCE_TYPE,
        logical_id="RotateOnUserChange",
        properties={"UserName": new, **more},
        old_properties=None if old is None else {"ServiceToken": "fn", "UserName": old},
        physical_id=None if request_type == "Create" else PHYSICAL_ID,
    )


def change_user_as_cloudformation_does(world: World, mp: pytest.MonkeyPatch) -> None:
    """The update's first resources: a new user, its bootstrap value, the function's variable."""
    world.iam.create_user(UserName=NEW_USER)
    world.write_bootstrap_over_current(
        {"iam_user_name": NEW_USER, "region": world.region, "host": world.ses.host,
         "port": world.ses.port}
    )  # fmt: skip
    mp.setenv("SMTP_IAM_USER_NAME", NEW_USER)
    world.cold_start()  # Lambda runs the updated function in new environments


def versions(world: World, secret_id: str | None = None) -> dict[str, list[str]]:
    """Each version of the secret and its labels (moto's dates are the time of the listing)."""
    listed = world.sm.list_secret_version_ids(SecretId=secret_id or world.secret_arn)["Versions"]
    return {v["VersionId"]: sorted(v.get("VersionStages", [])) for v in listed}


def test_a_change_of_user_rotates_to_a_key_of_the_new_user(
    world: World, cloudformation: answers.CloudFormationStandIn
) -> None:
    # GIVEN a deployed stack whose secret holds a working key of its first user, and a second
    # secret in the account
    assert world.rotate().ok
    old_key = world.value()["access_key_id"]
    other = world.sm.create_secret(Name="other", SecretString=json.dumps({"iam_user_name": "x"}))
    other_before = versions(world, other["ARN"])
    assert world.service is not None
    with pytest.MonkeyPatch.context() as mp:
        # AND a stack update that changed IamUserName: CloudFormation wrote the new bootstrap
        # value over AWSCURRENT and pointed the function at the new user
        change_user_as_cloudformation_does(world, mp)
        assert "password" not in world.value()
        # WHEN the stack's RotateOnUserChange resource is updated, its request naming another
        # secret too (a request's fields are claims)
        event = user_change(cloudformation, "Update", new=NEW_USER, old=world.user_name)
        event["ResourceProperties"]["SecretId"] = other["ARN"]
        answer = cloudformation.send(world, event)
        # THEN the function answers SUCCESS, and the rotation it started completes
        assert (answer["Status"], answer["Reason"]) == ("SUCCESS", "rotation started")
        assert answer["PhysicalResourceId"] == PHYSICAL_ID
        assert world.service.join(JOIN)
    # AND AWSCURRENT holds a key of the new user, which logs in over SMTP
    current = world.value()
    assert current["iam_user_name"] == NEW_USER
    new_keys = world.iam.list_access_keys(UserName=NEW_USER)["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in new_keys] == [current["access_key_id"]]
    assert world.login().ok
    # AND the old user's key, which readers may still use, is untouched; the other secret too
    assert world.access_keys() == {old_key: "Active"}
    assert versions(world, other["ARN"]) == other_before


@pytest.mark.parametrize(
    ("request_type", "old"),
    [
        pytest.param("Create", None, id="create"),
        pytest.param("Update", "ses-smtp-user", id="update-same-user"),
        pytest.param("Delete", None, id="delete"),
    ],
)
def test_nothing_rotates_unless_the_user_changed(
    world: World, cloudformation: answers.CloudFormationStandIn, request_type: str, old: str | None
) -> None:
    # GIVEN a rotated stack
    assert world.rotate().ok
    before = versions(world)
    # WHEN the resource is created, updated with the same user, or deleted
    event = user_change(cloudformation, request_type, new=world.user_name, old=old)
    answer = cloudformation.send(world, event)
    # THEN it answers SUCCESS and no rotation started
    assert answer["Status"] == "SUCCESS"
    assert versions(world) == before


def test_a_rotation_in_progress_counts_as_started(
    world: World, cloudformation: answers.CloudFormationStandIn
) -> None:
    # GIVEN a rotation in progress (AWSPENDING on a version of its own)
    assert world.rotate().ok
    pending = world.driver.start()
    with pytest.MonkeyPatch.context() as mp:
        change_user_as_cloudformation_does(world, mp)
        # WHEN the user change arrives
        event = user_change(cloudformation, "Update", new=NEW_USER, old=world.user_name)
        answer = cloudformation.send(world, event)
    # THEN Secrets Manager's refusal is answered SUCCESS, and that rotation is still the one
    assert (answer["Status"], answer["Reason"]) == ("SUCCESS", "a rotation was already in progress")
    assert world.driver.pending_version() == pending


def test_a_request_for_a_user_the_function_is_not_bound_to_rotates_nothing(
    world: World, cloudformation: answers.CloudFormationStandIn
) -> None:
    # GIVEN a rotated stack whose function is still bound to its first user
    assert world.rotate().ok
    before = versions(world)
    # WHEN an Update names another user (a roll-back whose order differs, or a forged request)
    event = user_change(cloudformation, "Update", new="someone-else", old=world.user_name)
    answer = cloudformation.send(world, event)
    # THEN nothing rotates, and CloudFormation is told why
    assert answer["Status"] == "SUCCESS"
    assert "not bound to the new user" in answer["Reason"]
    assert versions(world) == before


def test_a_fleet_function_refuses_the_user_change(
    make_world: Callable[..., World], cloudformation: answers.CloudFormationStandIn
) -> None:
    # GIVEN a fleet function (no SECRET_ARN: no secret of its own to rotate)
    world = make_world(function_env=fleet_env())
    before = versions(world)
    # WHEN a user change reaches it
    answer = cloudformation.send(
        world, user_change(cloudformation, "Update", new="app-b", old="app-a")
    )
    # THEN it answers FAILED, naming the rule, and nothing rotates
    assert answer["Status"] == "FAILED"
    assert "only a single-secret function (SECRET_ARN)" in answer["Reason"]
    assert versions(world) == before


@pytest.mark.parametrize(
    ("resource_type", "named"),
    [
        pytest.param(RESOURCE_TYPE, RESOURCE_TYPE, id="served"),
        pytest.param("Custom::Anything", "Custom::SmtpUserKeys", id="claimed"),
    ],
)
def test_the_log_and_metric_name_the_resource_type_only_when_served(
    world: World,
    cloudformation: answers.CloudFormationStandIn,
    capfd: pytest.CaptureFixture[str],
    resource_type: str,
    named: str,
) -> None:
    # GIVEN a request of a type this function serves, or one any sender may claim
    event = user_change(cloudformation, "Create", new=world.user_name)
    event["ResourceType"] = resource_type
    capfd.readouterr()
    # WHEN the function answers it
    cloudformation.send(world, event)
    # THEN its log line and its metric's Step dimension name the type only if it is served:
    # a claimed type never mints a log key or a metric series of its own
    lines = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line[:1] == "{"]
    answered = [line for line in lines if line.get("message") == "custom resource answered"]
    assert [line["step"] for line in answered] == [named]
    emf = [line for line in lines if "_aws" in line]
    assert {line["Step"] for line in emf} == {named}
