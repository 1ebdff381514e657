"""Fleet mode: one function rotates the secrets of several apps, each with its own IAM user.

Every test runs one local world whose function is in fleet mode (``FLEET_USER_PATH=/ses-smtp/``,
``FLEET_TAG_VALUE=default``) and adds apps to it (:mod:`sandbox.fleet`): a user under the path and
a secret tagged for the fleet. The world's own user (path ``/``) and secret (untagged) are outside
the fleet. "Nothing changed" is checked on every user's keys, statuses and tags and every secret's
stored versions and labels, before and after.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import time
from typing import TYPE_CHECKING, Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from moto.secretsmanager.models import secretsmanager_backends

from rotation_handler import app
from rotation_handler.custom_resource import NOT_CREATED, RESOURCE_TYPE
from rotation_handler.exceptions import (
    CustomResourceError,
    ForeignKeyError,
    NotBoundError,
    NotInFleetError,
    SmtpTestError,
    UserOwnedError,
)
from sandbox import answers, invariants, stacks
from sandbox.faults import Fault, FaultKind, inject
from sandbox.fleet import FLEET_NAME, TAG_KEY, USER_PATH, add_app, fleet_env
from sandbox.secrets_manager import LocalLambdaContext
from sandbox.wire import RawBody
from ses_smtp_rotator.contract import BINDING_TAG
from tests import leakscan

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sandbox.world import World

PAST_A_ONE_SECOND_GRACE = 1.5
ANSWER_WAIT = 5.0  # seconds: the answer is PUT before the handler returns


class Fleet:
    """A fleet-mode world and the apps added to it (their RotationTokens are leak-checked)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.apps: list[World] = []

    def add(self, name: str, **kwargs: Any) -> World:  # noqa: ANN401 - forwarded to add_app
        added = add_app(self.world, name, **kwargs)
        self.apps.append(added)
        return added


@pytest.fixture
def make_fleet(make_world: Callable[..., World]) -> Iterator[Callable[..., Fleet]]:
    fleets: list[Fleet] = []

    def factory(user_path: str = USER_PATH, **more: str | None) -> Fleet:
        fleet = Fleet(make_world(function_env=fleet_env(user_path=user_path, more=more)))
        fleets.append(fleet)
        return fleet

    yield factory
    apps = [member for fleet in fleets for member in fleet.apps]
    leakscan.remember(*(token for member in apps for token in member.driver.rotation_tokens))
    # The apps' errors are not printed: scan their text here (make_world scans its own world's).
    errors = [r.error for member in apps for r in member.driver.history if r.error is not None]
    material = leakscan.harvest() | {t for m in apps for t in m.driver.rotation_tokens}
    leaked = leakscan.find_leaks([leakscan.exception_text(e) for e in errors], material)
    assert not leaked, f"secret material in an app's error (prefixes): {leaked}"


@pytest.fixture
def fleet(make_fleet: Callable[..., Fleet]) -> Fleet:
    return make_fleet()


def snapshot(world: World) -> dict[str, Any]:
    """Every user's path, keys and tags; every secret's stored versions (digests) and labels."""
    iam = world.iam
    users = {
        user["UserName"]: (
            user["Path"],
            sorted(
                (k["AccessKeyId"], k["Status"])
                for k in iam.list_access_keys(UserName=user["UserName"])["AccessKeyMetadata"]
            ),
            sorted(
                (t["Key"], t["Value"])
                for t in iam.list_user_tags(UserName=user["UserName"])["Tags"]
            ),
        )
        for user in iam.list_users()["Users"]
    }
    backend = secretsmanager_backends[world.driver.account_id][world.region]
    stored = {
        arn: {
            vid: (
                sorted(v["version_stages"]),
                hashlib.sha256(v["secret_string"].encode()).hexdigest(),
            )
            for vid, v in secret.versions.items()
            if "secret_string" in v  # the version RotateSecret staged holds nothing yet
        }
        for arn, secret in backend.secrets.items()
    }
    return {"users": users, "secrets": stored}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- rotation ------------------------------------------------------------------------------------


def test_three_apps_rotate_and_each_keeps_its_own_keys(fleet: Fleet) -> None:
    # GIVEN three apps in one fleet
    apps = [fleet.add(f"app-{name}") for name in "abc"]
    # WHEN each rotates twice, in turn
    for _ in range(2):
        for rotating in apps:
            others = {o.user_name: o.access_keys() for o in apps if o is not rotating}
            rotation = rotating.rotate()
            # THEN it rotates and no other app's key is touched
            assert rotation.ok, rotation.attempts[-1].error
            assert {o.user_name: o.access_keys() for o in apps if o is not rotating} == others
    # AND each app holds its own user's keys: the new one live, the old one deactivated
    for rotated in apps:
        assert invariants.violations(rotated) == []
        keys = rotated.access_keys()
        assert keys[rotated.value()["access_key_id"]] == "Active"
        assert keys[rotated.value("AWSPREVIOUS")["access_key_id"]] == "Inactive"
        assert rotated.value()["iam_user_name"] == rotated.user_name
        assert rotated.user_tags()[BINDING_TAG] == rotated.secret_arn
    all_keys = [key for rotated in apps for key in rotated.access_keys()]
    assert len(all_keys) == len(set(all_keys)) == 6


def test_each_step_that_touches_the_user_reads_it_once(fleet: Fleet) -> None:
    # GIVEN an app, and a count of GetUser per invocation of the function
    member = fleet.add("app-a")
    counted: list[tuple[str, int]] = []
    calls = [0]

    def count_get_user(**_: Any) -> None:  # noqa: ANN401 - botocore hook
        calls[0] += 1

    def on_step(step: str, _token: str, record: object) -> None:
        if record is None:
            calls[0] = 0
        else:
            counted.append((step, calls[0]))

    events = app.runtime().iam.meta.events
    events.register("before-call.iam.GetUser", count_get_user, unique_id="count-get-user")
    member.driver.on_step = on_step
    try:
        # WHEN it rotates twice (the second retires the first key)
        assert member.rotate().ok
        assert member.rotate().ok
    finally:
        events.unregister("before-call.iam.GetUser", unique_id="count-get-user")
    # THEN every step that writes to the user (createSecret, finishSecret) asked the gate about
    # it exactly once; setSecret (nothing to activate) and testSecret (a login) did not read it
    assert len(counted) == 8
    writes = {"createSecret", "finishSecret"}
    assert all(calls == (step in writes) for step, calls in counted), counted


def test_a_throttled_get_user_is_retried_by_the_sdk(fleet: Fleet) -> None:
    # GIVEN an app / WHEN IAM throttles the GetUser of every step that reads the user (two:
    # createSecret and finishSecret)
    member = fleet.add("app-a")
    with inject(app.runtime().iam, Fault("GetUser", FaultKind.THROTTLE, times=2)) as fault:
        rotation = member.rotate(max_attempts=1)
    # THEN botocore's retry absorbs it and the rotation completes in one attempt
    assert fault.fired == 2
    assert rotation.ok, rotation.attempts[-1].error
    assert invariants.violations(member) == []


def test_single_secret_mode_reads_the_user_only_for_its_records(world: World) -> None:
    # GIVEN the single-secret function, bound to its user and secret by its configuration
    calls: list[str] = []

    def count_get_user(**_: Any) -> None:  # noqa: ANN401 - botocore hook
        calls.append("GetUser")

    events = app.runtime().iam.meta.events
    events.register("before-call.iam.GetUser", count_get_user, unique_id="count-get-user")
    try:
        # WHEN it rotates twice and sweeps
        assert world.rotate().ok
        assert world.rotate().ok
        world.sweep()
    finally:
        events.unregister("before-call.iam.GetUser", unique_id="count-get-user")
    # THEN only createSecret (the user's records: binding, intent) and the sweep read the user:
    # setSecret, testSecret and finishSecret rely on SMTP_IAM_USER_NAME alone
    assert calls == ["GetUser", "GetUser", "GetUser"]


@pytest.mark.parametrize(
    ("failure", "expected", "message"),
    [
        pytest.param("foreign-keys", ForeignKeyError, "IAM user app-b already has 2", id="keys"),
        pytest.param("smtp", SmtpTestError, "refused the connection", id="smtp-unreachable"),
    ],
)
def test_a_failing_app_does_not_block_the_others(
    fleet: Fleet, failure: str, expected: type[Exception], message: str
) -> None:
    # GIVEN three apps, the middle one doomed: two keys made by hand fill its user's slots, or
    # its secret points at an SMTP port where nothing listens
    first = fleet.add("app-a")
    failing = fleet.add("app-b", bootstrap={"port": closed_port()} if failure == "smtp" else None)
    if failure == "foreign-keys":
        for _ in range(2):
            failing.iam.create_access_key(UserName=failing.user_name)
    last = fleet.add("app-c")
    failing_keys = failing.access_keys()
    # WHEN all three rotate, the failing one in the middle
    rotations = [member.rotate(max_attempts=1) for member in (first, failing, last)]
    # THEN the failing app fails with its own error, and the others rotate
    error = rotations[1].attempts[-1].error
    assert isinstance(error, expected)
    assert message in str(error)
    for member, rotation in ((first, rotations[0]), (last, rotations[2])):
        assert rotation.ok, rotation.attempts[-1].error
        assert invariants.violations(member) == []
    # AND the failing app's live value is still the bootstrap (no key promoted); the keys made
    # by hand are kept
    assert "access_key_id" not in failing.value()
    if failure == "foreign-keys":
        assert failing.access_keys() == failing_keys


@pytest.mark.parametrize(
    ("user_path", "tags", "rule"),
    [
        pytest.param("/ses-smtp/", {}, "has no such tag", id="untagged-secret"),
        pytest.param("/ses-smtp/", {TAG_KEY: "other"}, f"has {TAG_KEY}=other", id="another-fleet"),
        pytest.param("/", {TAG_KEY: FLEET_NAME}, "has path /,", id="user-at-the-root"),
        pytest.param(
            "/ses-smtp-other/",
            {TAG_KEY: FLEET_NAME},
            "has path /ses-smtp-other/",
            id="user-beside-the-path",
        ),
    ],
)
def test_a_secret_or_user_outside_the_fleet_is_refused_and_nothing_changes(
    fleet: Fleet, user_path: str, tags: dict[str, str], rule: str
) -> None:
    # GIVEN an app of the fleet, rotated, and an outsider with a key made by hand
    member = fleet.add("app-a")
    assert member.rotate().ok
    outsider = fleet.add("outsider", user_path=user_path, tags=tags)
    outsider.iam.create_access_key(UserName="outsider")
    before = snapshot(fleet.world)
    # WHEN the outsider's secret is rotated by the fleet's function
    rotation = outsider.rotate(max_attempts=1)
    # THEN it is refused, naming the secret or user and the rule
    error = rotation.attempts[-1].error
    assert isinstance(error, NotInFleetError)
    assert rule in str(error)
    assert outsider.secret_arn in str(error) or "IAM user outsider" in str(error)
    # AND nothing changed: no key, status, tag, stored version or label
    assert snapshot(fleet.world) == before


def denied_get_user(request: Any, **_: Any) -> AWSResponse:  # noqa: ANN401 - botocore hook
    """IAM's answer to GetUser under a policy scoped to the fleet's path, for a user outside."""
    body = (
        b'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error>'
        b"<Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized to perform "
        b"iam:GetUser</Message></Error><RequestId>0</RequestId></ErrorResponse>"
    )
    headers = HTTPHeaders()
    headers["Content-Type"] = "text/xml"
    return AWSResponse(str(request.url), 403, headers, RawBody(body))


@contextlib.contextmanager
def iam_hides_users() -> Iterator[None]:
    """Inside the block, IAM answers the function's GetUser with AccessDenied (see above)."""
    hook: Any = denied_get_user  # before-send may answer (botocore types its hooks as None)
    events = app.runtime().iam.meta.events
    events.register_first("before-send.iam.GetUser", hook, unique_id="deny-get-user")
    try:
        yield
    finally:
        events.unregister("before-send.iam.GetUser", unique_id="deny-get-user")


def test_a_user_the_policy_hides_is_refused_as_outside_the_fleet(fleet: Fleet) -> None:
    # GIVEN an app whose user IAM will not show the function (the policy's path scope)
    member = fleet.add("app-a")
    before = snapshot(fleet.world)
    with iam_hides_users():
        # WHEN it rotates
        rotation = member.rotate(max_attempts=1)
    # THEN the refusal says why, and nothing changed
    error = rotation.attempts[-1].error
    assert isinstance(error, NotInFleetError)
    assert "IAM refused to read user app-a (AccessDenied)" in str(error)
    assert snapshot(fleet.world) == before


def delete_by_hand(world: World, user: str) -> None:
    """What an administrator does in the console: the user's keys, its policy, then the user."""
    for key in world.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
        world.iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
    for policy in world.iam.list_user_policies(UserName=user)["PolicyNames"]:
        world.iam.delete_user_policy(UserName=user, PolicyName=policy)
    world.iam.delete_user(UserName=user)


@pytest.mark.parametrize(
    ("rotated_first", "cause"),
    [
        pytest.param(True, "so it existed: it was deleted by hand", id="deleted-by-hand"),
        pytest.param(False, "the name is most likely mistyped", id="mistyped-name"),
    ],
)
def test_a_hidden_user_is_told_apart_deleted_by_hand_or_mistyped(
    fleet: Fleet, *, rotated_first: bool, cause: str
) -> None:
    # GIVEN an app whose secret rotated once and whose user was then deleted by hand, or an app
    # whose secret names a user that was never created ("app-a" mistyped as "app-x"); under the
    # fleet's path-scoped policy IAM answers AccessDenied to GetUser for either
    if rotated_first:
        member = fleet.add("app-a")
        assert member.rotate().ok
        delete_by_hand(fleet.world, "app-a")
    else:
        member = fleet.add("app-a", bootstrap={"iam_user_name": "app-x"})
    named = member.value()["iam_user_name"]
    before = snapshot(fleet.world)
    with iam_hides_users():
        # WHEN it rotates
        rotation = member.rotate(max_attempts=1)
    # THEN the refusal names the cause the secret's versions show and the command to check it,
    # and nothing changed
    error = rotation.attempts[-1].error
    assert isinstance(error, NotInFleetError)
    assert f"IAM refused to read user {named} (AccessDenied)" in str(error)
    assert cause in str(error)
    assert f"aws iam get-user --user-name {named}" in str(error)
    assert snapshot(fleet.world) == before


def denied_describe_secret(request: Any, **_: Any) -> AWSResponse:  # noqa: ANN401 - botocore hook
    """Secrets Manager's answer to DescribeSecret under the fleet's tag-conditioned policy."""
    body = json.dumps(
        {
            "__type": "AccessDeniedException",
            "Message": "not authorized to perform: secretsmanager:DescribeSecret",
        }
    ).encode()
    headers = HTTPHeaders()
    headers["Content-Type"] = "application/x-amz-json-1.1"
    return AWSResponse(str(request.url), 400, headers, RawBody(body))


def test_a_secret_the_policy_hides_is_refused_as_outside_the_fleet(fleet: Fleet) -> None:
    # GIVEN an app whose secret lacks the fleet's tag, so that in AWS the fleet's policy (Secrets
    # Manager actions only on tagged secrets) denies even DescribeSecret
    member = fleet.add("app-a", tags={})
    before = snapshot(fleet.world)
    hook: Any = denied_describe_secret  # before-send may answer (botocore types it as None)
    events = app.runtime().sm.meta.events
    events.register_first("before-send.secrets-manager.DescribeSecret", hook, unique_id="deny")
    try:
        # WHEN Secrets Manager runs a rotation step, and the schedule runs the sweep
        record = member.driver.invoke("createSecret", member.driver.start())
        with pytest.raises(NotInFleetError) as swept:
            member.sweep()
    finally:
        events.unregister("before-send.secrets-manager.DescribeSecret", unique_id="deny")
    # THEN both are refused as outside the fleet, naming the tag rule, and nothing changed
    for error in (record.error, swept.value):
        assert isinstance(error, NotInFleetError), error
        assert "may only read secrets carrying the tag ses-smtp-rotation:fleet=" in str(error)
        assert member.secret_arn in str(error)
    assert snapshot(fleet.world) == before


def test_a_secret_naming_a_user_that_does_not_exist_fails_clearly(fleet: Fleet) -> None:
    # GIVEN an app whose secret names a user nobody created
    member = fleet.add("app-a", bootstrap={"iam_user_name": "app-nobody"})
    before = snapshot(fleet.world)
    # WHEN it rotates / THEN the error names the user, and nothing changed
    rotation = member.rotate(max_attempts=1)
    assert "IAM user app-nobody does not exist" in str(rotation.attempts[-1].error)
    assert snapshot(fleet.world) == before


def test_a_user_moved_out_of_the_path_mid_rotation_is_not_promoted(fleet: Fleet) -> None:
    # GIVEN a rotation whose createSecret and setSecret ran
    member = fleet.add("app-a")
    assert member.rotate().ok
    token = member.driver.start()
    assert member.driver.invoke("createSecret", token).ok
    assert member.driver.invoke("setSecret", token).ok
    # WHEN the user leaves the fleet's path before finishSecret
    member.iam.update_user(UserName="app-a", NewPath="/elsewhere/")
    before = snapshot(fleet.world)
    record = member.driver.invoke("finishSecret", token)
    # THEN finishSecret refuses before promoting or retiring anything
    assert isinstance(record.error, NotInFleetError)
    assert snapshot(fleet.world) == before


def test_the_single_secret_settings_are_refused_in_fleet_mode(
    make_world: Callable[..., World],
) -> None:
    # GIVEN a fleet function still bound to one secret (both modes at once)
    world = make_world(function_env={"FLEET_USER_PATH": "/ses-smtp/", "FLEET_TAG_VALUE": "x"})
    before = snapshot(world)
    # WHEN it is invoked / THEN the configuration error names the variables, nothing changed
    rotation = world.rotate(max_attempts=1)
    assert "SECRET_ARN and SMTP_IAM_USER_NAME" in str(rotation.attempts[-1].error)
    assert snapshot(world) == before


# -- the sweep -----------------------------------------------------------------------------------


def test_the_sweep_retires_each_apps_old_key_and_refuses_outsiders(
    make_fleet: Callable[..., Fleet],
) -> None:
    # GIVEN two apps rotated twice under a one-second grace period
    fleet = make_fleet(OLD_KEY_GRACE_PERIOD="1s")
    first, second = fleet.add("app-a"), fleet.add("app-b")
    for member in (first, second, first, second):
        assert member.rotate().ok
    time.sleep(PAST_A_ONE_SECOND_GRACE)
    second_keys = second.access_keys()
    # WHEN the first app's sweep runs
    summary = first.sweep()
    # THEN it retires that app's old key and touches no other app's
    assert summary["Result"] == "retired: deactivate"
    assert first.access_keys()[summary["AccessKeyId"]] == "Inactive"
    assert second.access_keys() == second_keys
    # AND the sweep of a secret outside the fleet (the world's own, untagged) is refused
    with pytest.raises(NotInFleetError, match="has no such tag"):
        fleet.world.sweep()
    # AND the sweep of an app whose user left the path changes nothing
    second.iam.update_user(UserName="app-b", NewPath="/elsewhere/")
    before = snapshot(fleet.world)
    with pytest.raises(NotInFleetError, match="has path /elsewhere/"):
        second.sweep()
    assert snapshot(fleet.world) == before


# -- the key clean-up custom resource ------------------------------------------------------------


class CloudFormation(answers.CloudFormationStandIn):
    """The stand-in, sending ``Custom::SmtpUserKeys`` requests."""

    def event(
        self,
        request_type: str,
        *,
        user: str,
        secret_id: str,
        physical_id: str | None = None,
        stack_id: str = "arn:aws:cloudformation:us-east-1:123456789012:stack/app-a/1",
    ) -> dict[str, Any]:
        return self.request(
            request_type,
            resource_type=RESOURCE_TYPE,
            logical_id="SmtpUserKeys",
            properties={"UserName": user, "SecretId": secret_id},
            physical_id=physical_id,
            stack_id=stack_id,
        )


@pytest.fixture
def cloudformation() -> Iterator[CloudFormation]:
    with CloudFormation() as cfn:
        yield cfn
    leaked = leakscan.find_leaks(cfn.bodies, leakscan.harvest())
    assert not leaked, f"secret material in an answer to CloudFormation: {leaked}"


def test_the_custom_resource_validates_then_deletes_the_apps_keys_and_records(
    fleet: Fleet, cloudformation: CloudFormation
) -> None:
    # GIVEN two rotated apps, each deployed by its stack; the first app's user also carries a
    # tag of its own
    member, other = fleet.add("app-a"), fleet.add("app-b")
    for rotating in (member, member, other):
        assert rotating.rotate().ok
    member.iam.tag_user(UserName="app-a", Tags=[{"Key": "team", "Value": "mail"}])
    stack = stacks.deploy(
        fleet.world, stack_name="app-a", user="app-a", secret_arn=member.secret_arn
    )
    before = snapshot(fleet.world)
    ids = {"user": "app-a", "secret_id": member.secret_arn, "stack_id": stack}
    # WHEN the app's stack creates, then updates the resource
    for request_type in ("Create", "Update"):
        physical = None if request_type == "Create" else "app-a"
        event = cloudformation.event(request_type, physical_id=physical, **ids)
        answer = cloudformation.send(fleet.world, event)
        # THEN each is answered SUCCESS with the user as the physical id, and nothing changed
        assert (answer["Status"], answer["PhysicalResourceId"]) == ("SUCCESS", "app-a")
    assert snapshot(fleet.world) == before
    other_before = (other.access_keys(), other.user_tags())
    # WHEN a Delete arrives while CloudFormation is not deleting the stack (anyone who may invoke
    # the function can send one)
    early = cloudformation.send(
        fleet.world, cloudformation.event("Delete", physical_id="app-a", **ids)
    )
    # THEN it is FAILED and the keys its readers use are untouched
    assert early["Status"] == "FAILED"
    assert "does not show stack" in early["Reason"]
    assert snapshot(fleet.world) == before
    # WHEN the app's stack is deleted: its rotation schedule goes first (rotation off), then
    # the resource
    member.sm.cancel_rotate_secret(SecretId=member.secret_arn)
    stacks.deleting(fleet.world, stack)
    answer = cloudformation.send(
        fleet.world, cloudformation.event("Delete", physical_id="app-a", **ids)
    )
    # THEN every key of its user is gone, with the function's records; its own tag and the
    # stack's binding stay (they go with the user)
    assert answer["Status"] == "SUCCESS"
    assert member.access_keys() == {}
    assert member.user_tags() == {"team": "mail", BINDING_TAG: member.secret_arn}
    # AND the other app is untouched and still rotates
    assert (other.access_keys(), other.user_tags()) == other_before
    assert other.rotate().ok
    # AND a repeated Delete, and one after the user is gone, succeed
    again = cloudformation.send(
        fleet.world, cloudformation.event("Delete", physical_id="app-a", **ids)
    )
    assert again["Status"] == "SUCCESS"
    member.iam.delete_user_policy(UserName="app-a", PolicyName="ses-send")
    member.iam.delete_user(UserName="app-a")
    gone = cloudformation.send(
        fleet.world, cloudformation.event("Delete", physical_id="app-a", **ids)
    )
    assert (gone["Status"], gone["Reason"]) == ("SUCCESS", "the IAM user no longer exists")


def test_a_delete_anyone_could_send_takes_no_live_or_foreign_key(
    fleet: Fleet, cloudformation: CloudFormation
) -> None:
    # GIVEN a rotating app deployed by its stack, and a user of the path made by hand (bound to
    # no secret) with a key made by hand
    member = fleet.add("app-a")
    assert member.rotate().ok
    stack = stacks.deploy(
        fleet.world, stack_name="app-a", user="app-a", secret_arn=member.secret_arn
    )
    bare = fleet.add("app-b", bound=False)
    bare.iam.create_access_key(UserName="app-b")
    # AND an attacker's stack whose own clean-up resource names the live app's user
    attacker = stacks.deploy(
        fleet.world, stack_name="attacker", user="app-a", secret_arn=bare.secret_arn
    )
    before = snapshot(fleet.world)

    def delete(user: str, secret_id: str, stack_id: str) -> dict[str, Any]:
        event = cloudformation.event(
            "Delete", physical_id=user, user=user, secret_id=secret_id, stack_id=stack_id
        )
        return cloudformation.send(fleet.world, event)

    # WHEN Deletes name the live app's user: from its own stack (not being deleted), from a
    # stack that does not exist, and from the attacker's stack while it is being deleted
    stacks.deleting(fleet.world, attacker)
    refused = [
        delete("app-a", member.secret_arn, stack),
        delete(
            "app-a", member.secret_arn, "arn:aws:cloudformation:us-east-1:123456789012:stack/x/1"
        ),
        delete("app-a", member.secret_arn, attacker),
    ]
    # THEN each is FAILED, naming why
    assert [answer["Status"] for answer in refused] == ["FAILED"] * 3
    assert "does not show stack" in refused[0]["Reason"]
    assert "could not confirm" in refused[1]["Reason"]
    assert "not a resource of stack" in refused[2]["Reason"]
    # WHEN a Delete names the user bound to no secret
    unowned = delete("app-b", bare.secret_arn, attacker)
    # THEN it succeeds without deleting its hand-made key (no key of the rotation's is there)
    assert unowned["Status"] == "SUCCESS"
    assert "nothing was deleted" in unowned["Reason"]
    # AND nothing changed anywhere
    assert snapshot(fleet.world) == before


def test_a_response_url_off_aws_is_refused_before_anything_is_done(
    fleet: Fleet, cloudformation: CloudFormation
) -> None:
    # GIVEN an app whose rotation is off
    member = fleet.add("app-a")
    assert member.rotate().ok
    member.sm.cancel_rotate_secret(SecretId=member.secret_arn)
    before = snapshot(fleet.world)
    # WHEN a Delete asks for its answer at an https host that is not AWS's
    event = cloudformation.event(
        "Delete", physical_id="app-a", user="app-a", secret_id=member.secret_arn
    )
    event["ResponseURL"] = "https://attacker.example/answer"
    # THEN it is refused and nothing is deleted
    with pytest.raises(CustomResourceError, match=r"amazonaws\.com host"):
        fleet.world.driver.handler(event, LocalLambdaContext())
    assert snapshot(fleet.world) == before


def test_the_custom_resource_refuses_a_user_outside_the_path(
    fleet: Fleet, cloudformation: CloudFormation
) -> None:
    # GIVEN a user at the root with a key, and its secret tagged for the fleet
    outsider = fleet.add("outsider", user_path="/")
    outsider.iam.create_access_key(UserName="outsider")
    before = snapshot(fleet.world)
    ids = {"user": "outsider", "secret_id": outsider.secret_arn}
    # WHEN a stack creates the resource for it
    created = cloudformation.send(fleet.world, cloudformation.event("Create", **ids))
    # THEN it is FAILED, naming the rule, with a physical id that is no user name
    assert created["Status"] == "FAILED"
    assert "has path /, outside this fleet's /ses-smtp/" in created["Reason"]
    assert created["PhysicalResourceId"].startswith(NOT_CREATED)
    # AND the roll-back's Delete of that resource succeeds without touching anything
    rollback = cloudformation.event("Delete", physical_id=created["PhysicalResourceId"], **ids)
    assert cloudformation.send(fleet.world, rollback)["Status"] == "SUCCESS"
    # AND a Delete naming the user itself is FAILED: its keys are not the fleet's
    deleted = cloudformation.send(
        fleet.world, cloudformation.event("Delete", physical_id="outsider", **ids)
    )
    assert deleted["Status"] == "FAILED"
    assert "outside this fleet's" in deleted["Reason"]
    assert snapshot(fleet.world) == before


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param({"tags": {}}, "has no such tag", id="untagged-secret"),
        pytest.param({"owned_by_other": True}, "is bound to secret", id="user-of-another-secret"),
        pytest.param({"no_user_name": True}, "needs UserName", id="no-user-name"),
        pytest.param({"user": "app-nobody"}, "IAM user app-nobody does not exist", id="no-user"),
        pytest.param({"resource_type": "Custom::Other"}, "unsupported request", id="other-type"),
    ],
)
def test_the_custom_resource_refuses_what_is_not_the_apps(
    fleet: Fleet, cloudformation: CloudFormation, change: dict[str, Any], reason: str
) -> None:
    # GIVEN an app (its secret untagged in one case) and another app that rotated
    member = fleet.add("app-a", tags=change.get("tags"))
    other = fleet.add("app-b")
    assert other.rotate().ok
    user = change.get("user", "app-a")
    event = cloudformation.event("Create", user=user, secret_id=member.secret_arn)
    if change.get("owned_by_other"):
        # the request names app-b's user, bound to app-b's secret
        event = cloudformation.event("Create", user="app-b", secret_id=member.secret_arn)
    if change.get("no_user_name"):
        del event["ResourceProperties"]["UserName"]
    if "resource_type" in change:
        event["ResourceType"] = change["resource_type"]
    before = snapshot(fleet.world)
    # WHEN the function serves it / THEN it answers FAILED with the reason, changing nothing
    answer = cloudformation.send(fleet.world, event)
    assert answer["Status"] == "FAILED"
    assert reason in answer["Reason"]
    assert snapshot(fleet.world) == before


def test_the_custom_resource_answers_a_bad_configuration_and_retries_its_answer(
    make_fleet: Callable[..., Fleet], cloudformation: CloudFormation
) -> None:
    # GIVEN a function whose FLEET_USER_PATH is invalid, and CloudFormation answering 500 once
    fleet = make_fleet(user_path="ses-smtp")
    member = fleet.add("app-a", user_path="/ses-smtp/")
    cloudformation.fail_next = 1
    # WHEN a Create arrives
    answer = cloudformation.send(
        fleet.world, cloudformation.event("Create", user="app-a", secret_id=member.secret_arn)
    )
    # THEN the configuration error is the FAILED answer's reason, delivered on the second PUT
    assert answer["Status"] == "FAILED"
    assert "FLEET_USER_PATH must be" in answer["Reason"]
    assert len(cloudformation.bodies) == 2


def test_the_custom_resource_fails_when_cloudformation_never_takes_the_answer(
    fleet: Fleet, cloudformation: CloudFormation
) -> None:
    # GIVEN CloudFormation's URL refusing every PUT
    member = fleet.add("app-a")
    cloudformation.fail_next = 3
    event = cloudformation.event("Create", user="app-a", secret_id=member.secret_arn)
    # WHEN the function answers / THEN it tries three times, then raises (Lambda retries the
    # asynchronous invocation), naming neither the URL nor its signature
    with pytest.raises(CustomResourceError, match=r"HTTP 500, 3 tries") as raised:
        fleet.world.driver.handler(event, LocalLambdaContext())
    assert "presigned" not in str(raised.value)
    assert len(cloudformation.bodies) == 3


@pytest.mark.parametrize(
    "url",
    ["http://example.com/answer", "file:///tmp/answer", "ftp://127.0.0.1/answer", ""],
)
def test_the_custom_resource_without_an_allowed_response_url_does_nothing(
    fleet: Fleet, cloudformation: CloudFormation, url: str
) -> None:
    # GIVEN a rotated app
    member = fleet.add("app-a")
    assert member.rotate().ok
    event = cloudformation.event(
        "Delete", user="app-a", secret_id=member.secret_arn, physical_id="app-a"
    )
    event["ResponseURL"] = url
    before = snapshot(fleet.world)
    # WHEN the Delete names a ResponseURL that is neither https nor http to 127.0.0.1
    with pytest.raises(CustomResourceError, match=r"https ResponseURL on an amazonaws\.com host"):
        fleet.world.driver.handler(event, LocalLambdaContext())
    # THEN nothing was deleted and nothing was sent
    assert snapshot(fleet.world) == before
    assert cloudformation.bodies == []


def test_the_custom_resource_in_single_secret_mode(
    world: World, cloudformation: CloudFormation
) -> None:
    # GIVEN the single-secret function, rotated
    assert world.rotate().ok
    ids = {"user": world.user_name, "secret_id": world.secret_arn}
    # WHEN a resource names its user / THEN it is created
    created = cloudformation.send(world, cloudformation.event("Create", **ids))
    assert (created["Status"], created["PhysicalResourceId"]) == ("SUCCESS", world.user_name)
    # AND one naming another user is refused
    world.iam.create_user(UserName="someone-else")
    other = cloudformation.event("Create", user="someone-else", secret_id=world.secret_arn)
    refused = cloudformation.send(world, other)
    assert refused["Status"] == "FAILED"
    assert "SMTP_IAM_USER_NAME" in refused["Reason"]
    # AND once its stack is being deleted, rotation off, the Delete removes the bound user's keys
    # and the function's records (the binding its first rotation wrote goes with the user)
    stack = stacks.deploy(
        world, stack_name="single", user=world.user_name, secret_arn=world.secret_arn
    )
    world.sm.cancel_rotate_secret(SecretId=world.secret_arn)
    stacks.deleting(world, stack)
    deleted = cloudformation.send(
        world, cloudformation.event("Delete", physical_id=world.user_name, stack_id=stack, **ids)
    )
    assert deleted["Status"] == "SUCCESS"
    assert world.access_keys() == {}
    assert world.user_tags() == {BINDING_TAG: world.secret_arn}
    # AND one naming another secret is refused
    other_secret = world.sm.create_secret(Name="another", SecretString="{}")["ARN"]
    wrong = cloudformation.event("Create", user=world.user_name, secret_id=other_secret)
    refused = cloudformation.send(world, wrong)
    assert refused["Status"] == "FAILED"
    assert f"(SECRET_ARN) and refuses to rotate {other_secret}" in refused["Reason"]
    # AND a Delete after the user is gone succeeds
    world.iam.delete_user_policy(UserName=world.user_name, PolicyName="ses-send")
    world.iam.delete_user(UserName=world.user_name)
    gone = cloudformation.send(
        world, cloudformation.event("Delete", physical_id=world.user_name, **ids)
    )
    assert (gone["Status"], gone["Reason"]) == ("SUCCESS", "the IAM user no longer exists")


def test_a_finish_run_again_after_the_user_left_the_path_retires_nothing(fleet: Fleet) -> None:
    # GIVEN a rotation promoted by a finishSecret whose answer was lost before it retired the
    # old key (the promotion is done here as that run did it)
    member = fleet.add("app-a")
    assert member.rotate().ok
    old = member.value()["access_key_id"]
    token = member.driver.start()
    for step in ("createSecret", "setSecret", "testSecret"):
        assert member.driver.invoke(step, token).ok
    current = next(v for v, s in member.driver.stages().items() if "AWSCURRENT" in s)
    member.sm.update_secret_version_stage(
        SecretId=member.secret_arn,
        VersionStage="AWSCURRENT",
        MoveToVersionId=token,
        RemoveFromVersionId=current,
    )
    # WHEN the user leaves the path and Secrets Manager runs finishSecret again
    member.iam.update_user(UserName="app-a", NewPath="/elsewhere/")
    before = snapshot(fleet.world)
    record = member.driver.invoke("finishSecret", token)
    # THEN the old key is not retired: the user is no longer the fleet's
    assert isinstance(record.error, NotInFleetError)
    assert member.access_keys()[old] == "Active"
    assert snapshot(fleet.world) == before


# -- the trust boundary: an app's operator, who may write only their own secret -----------------


def _write_own_secret(app_world: World, value: dict[str, Any]) -> None:
    """What app A's operator may do: put a version of A's own secret (it becomes AWSCURRENT)."""
    app_world.sm.put_secret_value(SecretId=app_world.secret_arn, SecretString=json.dumps(value))


def test_an_apps_sweep_never_retires_another_apps_live_key(
    make_fleet: Callable[..., Fleet],
) -> None:
    # GIVEN two rotated apps with a grace period, and B's live key id (it is in the shared logs)
    fleet = make_fleet(OLD_KEY_GRACE_PERIOD="1s")
    a, b = fleet.add("app-a"), fleet.add("app-b")
    for rotating in (a, b, b):
        assert rotating.rotate().ok
    live = b.value()["access_key_id"]
    forged = {"iam_user_name": "app-b", "region": a.region, "host": a.ses.host, "port": a.ses.port}
    # WHEN A's operator writes two versions of A's secret naming B's user: the older with B's
    # live key, the newer with a made-up one, then A's sweeps run past the grace period
    _write_own_secret(a, forged | {"access_key_id": live, "username": live, "password": "x"})
    made_up = "AKIAFORGEDFORGED0001"
    _write_own_secret(a, forged | {"access_key_id": made_up, "username": made_up, "password": "x"})
    # THEN every sweep of A is refused: B's user is bound to B's secret, not to A's
    for _ in range(2):
        with pytest.raises(UserOwnedError, match="is bound to secret"):
            a.sweep()
        time.sleep(1.5)
    # AND B's live key is still Active and B still logs in
    assert b.access_keys()[live] == "Active"
    assert b.login().ok


def test_no_secret_can_claim_a_user_that_no_secret_is_bound_to(fleet: Fleet) -> None:
    # GIVEN an app whose user was made by hand (bound to no secret), with a key of its own,
    # and another rotated app
    victim = fleet.add("app-v", bound=False)
    own_key = victim.iam.create_access_key(UserName="app-v")["AccessKey"]["AccessKeyId"]
    a = fleet.add("app-a")
    assert a.rotate().ok
    before = (victim.access_keys(), victim.user_tags())
    # WHEN A's operator points A's secret at that user and rotates A
    _write_own_secret(a, {"iam_user_name": "app-v", "region": a.region, "host": a.ses.host})
    rotation = a.rotate(max_attempts=1)
    # THEN the rotation is refused, naming the adoption command, and nothing of the user changed
    assert not rotation.ok
    assert isinstance(rotation.attempts[-1].error, NotBoundError)
    assert "bound to no secret" in str(rotation.attempts[-1].error)
    assert (victim.access_keys(), victim.user_tags()) == before
    assert victim.access_keys() == {own_key: "Active"}


def test_a_forged_delete_never_takes_the_keys_of_an_app_whose_rotation_is_off(
    fleet: Fleet, cloudformation: CloudFormation
) -> None:
    # GIVEN a rotated app whose rotation was turned off (as a failed rotation's runbook advises)
    b = fleet.add("app-b")
    assert b.rotate().ok
    b.sm.cancel_rotate_secret(SecretId=b.secret_arn)
    keys_before = b.access_keys()
    # WHEN anyone who may invoke the function sends a Delete naming its user and secret, with a
    # StackId of their choosing
    event = cloudformation.event(
        "Delete", user="app-b", secret_id=b.secret_arn, physical_id="app-b"
    )
    answer = cloudformation.send(fleet.world, event)
    # THEN it is refused and B's keys are untouched: CloudFormation shows no such teardown
    assert answer["Status"] == "FAILED"
    assert b.access_keys() == keys_before
    assert b.login().ok


def test_a_delete_for_a_user_iam_hides_lets_the_stack_go(
    fleet: Fleet, cloudformation: CloudFormation
) -> None:
    # GIVEN an app's user deleted by hand: with the fleet's path-scoped policy, IAM answers
    # GetUser with AccessDenied (as for a user outside the path), not NoSuchEntity
    member = fleet.add("app-a")
    before = snapshot(fleet.world)
    with iam_hides_users():
        # WHEN its stack's Delete arrives
        event = cloudformation.event(
            "Delete", user="app-a", secret_id=member.secret_arn, physical_id="app-a"
        )
        answer = cloudformation.send(fleet.world, event)
    # THEN it succeeds without deleting anything (the fleet function holds no key IAM hides
    # from it), so the stack's deletion is not stuck in DELETE_FAILED
    assert answer["Status"] == "SUCCESS"
    assert "gone or outside the fleet's path" in answer["Reason"]
    assert snapshot(fleet.world) == before
