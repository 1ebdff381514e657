"""Cross-account rotation: a central function rotates a member account's secret through its role.

Two accounts in one moto: the world's (moto's default account, where the function runs, as the
Lambda context's ARN says) and a member account holding the app's IAM user, its secret and the
member role (``sandbox.accounts``). moto's AssumeRole is made to refuse a role that does not
exist or does not trust the caller, as STS does (``sandbox.moto_fidelity``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError

from rotation_handler import accounts as account_clients
from rotation_handler.exceptions import CrossAccountError
from rotation_handler.settings import Settings
from sandbox import accounts, invariants, moto_fidelity
from sandbox.calls import count_calls
from sandbox.secrets_manager import LocalLambdaContext
from sandbox.world import local_world
from ses_smtp_rotator.password import derive_smtp_password

if TYPE_CHECKING:
    from collections.abc import Callable

    from sandbox.accounts import MemberAccount
    from sandbox.world import World

ROLE = accounts.MEMBER_ROLE_NAME
CROSS_ACCOUNT = {
    "SECRET_ARN": None,
    "SMTP_IAM_USER_NAME": None,
    "CROSS_ACCOUNT_ROLE_NAME": ROLE,
}


def central(make_world: Callable[..., World], **env: str | None) -> World:
    """The central account's world: the function runs here, bound to no single secret."""
    return make_world(function_env=CROSS_ACCOUNT | env)


def snapshot(member: MemberAccount) -> dict[str, Any]:
    """What a failed rotation must leave as it was in the member account."""
    return {
        "keys": member.access_keys(),
        "tags": member.user_tags(),
        "current": member.value(),
        "versions": {vid: s for vid, s in member.driver.stages().items() if s != ["AWSPENDING"]},
    }


@pytest.mark.parametrize(
    "moto_server", [pytest.param(False, id="in-process"), pytest.param(True, id="moto-server")]
)
def test_a_member_accounts_secret_rotates_through_the_member_role(
    make_world: Callable[..., World], *, moto_server: bool
) -> None:
    # GIVEN a central function with CROSS_ACCOUNT_ROLE_NAME and an app in a member account
    world = make_world(function_env=CROSS_ACCOUNT, moto_server=moto_server)
    member = accounts.add_member_account(world)
    # WHEN Secrets Manager rotates the member's secret
    rotation = member.driver.rotate()
    # THEN the rotation passes and the new credentials log in (the SMTP test used them)
    assert rotation.ok, rotation.attempts[-1].error
    value = member.value()
    assert value["iam_user_name"] == member.user_name
    assert member.access_keys() == {value["access_key_id"]: "Active"}
    assert member.login().ok
    # AND the key was made in the member account, through the member role, in a session named
    # after the function; the central account's own user was not touched
    assert member.sessions() == [(member.role_arn, LocalLambdaContext().function_name)]
    assert world.access_keys() == {}
    assert invariants.violations(world) == []


def test_the_rotation_token_reaches_put_secret_value(make_world: Callable[..., World]) -> None:
    # GIVEN a member account's secret
    world = central(make_world)
    member = accounts.add_member_account(world)
    # WHEN it rotates
    rotation = member.driver.rotate()
    assert rotation.ok
    # THEN the PutSecretValue of the new version carried the createSecret event's RotationToken
    (create,) = [record for record in member.driver.history if record.step == "createSecret"]
    assert create.rotation_token
    assert member.rotation_token_received(rotation.token) == create.rotation_token


def test_the_rotation_token_reaches_put_secret_value_in_the_functions_own_account(
    world: World,
) -> None:
    # GIVEN the single-secret deployment / WHEN it rotates
    rotation = world.rotate()
    assert rotation.ok
    # THEN PutSecretValue carried the RotationToken there too (AWS requires it for assumed roles)
    (create,) = [record for record in world.driver.history if record.step == "createSecret"]
    assert (
        moto_fidelity.rotation_token_received(
            world.secret_arn,
            rotation.token,
            account_id=world.driver.account_id,
            region=world.region,
        )
        == create.rotation_token
    )


def test_a_missing_member_role_fails_clearly_and_changes_nothing(
    make_world: Callable[..., World],
) -> None:
    # GIVEN a member account where the member role was never deployed
    world = central(make_world)
    member = accounts.add_member_account(world, role_name=None)
    before = snapshot(member)
    # WHEN Secrets Manager tries to rotate its secret
    rotation = member.driver.rotate(max_attempts=2)
    # THEN every attempt fails at its first step with an error naming the role and what to do
    assert not rotation.ok
    for attempt in rotation.attempts:
        assert [record.step for record in attempt.steps] == ["createSecret"]
        error = attempt.error
        assert isinstance(error, CrossAccountError)
        assert member.role_arn in str(error)
        assert "AccessDenied" in str(error)
        assert "member-role" in str(error)
    # AND nothing changed in the member account
    assert snapshot(member) == before


def test_a_member_role_that_does_not_trust_the_central_account_fails_clearly(
    make_world: Callable[..., World],
) -> None:
    # GIVEN a member role that trusts another account than the function's
    world = central(make_world)
    member = accounts.add_member_account(world, trusted_account="999999999999")
    before = snapshot(member)
    # WHEN the secret rotates / THEN it fails naming the role, and nothing changed
    rotation = member.driver.rotate(max_attempts=1)
    assert isinstance(rotation.attempts[-1].error, CrossAccountError)
    assert member.role_arn in str(rotation.attempts[-1].error)
    assert snapshot(member) == before


def test_without_cross_account_role_name_a_member_secret_is_refused_before_any_call(
    make_world: Callable[..., World],
) -> None:
    # GIVEN a function without CROSS_ACCOUNT_ROLE_NAME, and a secret in another account
    world = central(make_world, CROSS_ACCOUNT_ROLE_NAME=None)
    member = accounts.add_member_account(world)
    before = snapshot(member)
    # WHEN Secrets Manager invokes it for that secret
    with (
        count_calls(account_id=member.account_id, region=world.region) as member_calls,
        count_calls(account_id=world.driver.account_id, region=world.region) as own_calls,
    ):
        record = member.driver.invoke("createSecret", member.driver.start())
    # THEN it is refused with a message naming the secret, the account and the variable
    assert isinstance(record.error, CrossAccountError)
    message = str(record.error)
    assert member.secret_arn in message
    assert member.account_id in message
    assert "CROSS_ACCOUNT_ROLE_NAME" in message
    # AND it made no AWS call: no role assumed, nothing read or changed in either account
    assert member.sessions() == []
    assert member_calls.total() == own_calls.total() == 0
    assert snapshot(member) == before


def test_the_sweep_acts_in_the_member_account_through_the_role(
    make_world: Callable[..., World],
) -> None:
    # GIVEN a member secret rotated twice under a grace period (its old key still Active)
    world = central(make_world, OLD_KEY_GRACE_PERIOD="1h")
    member = accounts.add_member_account(world)
    assert member.driver.rotate().ok
    assert member.driver.rotate().ok
    old = member.value("AWSPREVIOUS")["access_key_id"]
    # WHEN the schedule's sweep event names the member's secret
    summary = member.sweep()
    # THEN it read the member user's keys through the role and waits for the period
    assert summary["SecretId"] == member.secret_arn
    assert summary["Result"] == "in-grace-period"
    assert summary["AccessKeyId"] == old
    assert member.access_keys()[old] == "Active"


def test_without_cross_account_role_name_the_sweep_refuses_a_member_secret(
    make_world: Callable[..., World],
) -> None:
    world = central(make_world, CROSS_ACCOUNT_ROLE_NAME=None)
    member = accounts.add_member_account(world)
    with pytest.raises(CrossAccountError, match="CROSS_ACCOUNT_ROLE_NAME"):
        member.sweep()
    assert member.sessions() == []


def test_a_warm_function_assumes_the_member_role_once_for_many_steps(
    make_world: Callable[..., World],
) -> None:
    # GIVEN two rotations (eight steps) of a member's secret by a warm function
    world = central(make_world)
    member = accounts.add_member_account(world)
    assert member.driver.rotate().ok
    assert member.driver.rotate().ok
    # THEN the role was assumed once: the credentials are kept until shortly before they expire
    assert len(member.sessions()) == 1


def test_assumed_credentials_are_renewed_shortly_before_they_expire(world: World) -> None:
    # GIVEN the function's account clients with a clock the test moves
    member = accounts.add_member_account(world)
    now = [datetime.now(UTC)]
    session = boto3.session.Session(region_name=world.region)
    own = account_clients.Clients(sm=session.client("secretsmanager"), iam=session.client("iam"))
    clients = account_clients.AccountClients(
        own=own,
        settings=Settings(region=world.region, cross_account_role_name=ROLE),
        session=session,
        config=session.client("sts").meta.config,
        clock=lambda: now[0],
    )

    def for_member() -> account_clients.Clients:
        return clients.for_secret(
            member.secret_arn,
            function_arn=LocalLambdaContext().invoked_function_arn,
            function_name="fleet-fn",
        )

    first = for_member()
    assert first.expires is not None
    # WHEN more than an invocation's length is left on the credentials / THEN they are reused
    assert for_member() is first
    now[0] = first.expires - account_clients.RENEW_BEFORE - timedelta(minutes=1)
    assert for_member() is first
    # WHEN less is left / THEN they are renewed (a second AssumeRole)
    now[0] = first.expires - account_clients.RENEW_BEFORE + timedelta(minutes=1)
    renewed = for_member()
    assert renewed is not first
    assert member.sessions() == [(member.role_arn, "fleet-fn")] * 2
    # AND the renewed clients act in the member account
    users = renewed.iam.list_users()["Users"]
    assert [user["UserName"] for user in users] == [member.user_name]
    # AND a secret of the function's own account uses the function's own clients
    own_secret = clients.for_secret(
        world.secret_arn, function_arn=LocalLambdaContext().invoked_function_arn, function_name=None
    )
    assert own_secret is own


def test_without_the_lambdas_arn_the_functions_account_comes_from_sts(world: World) -> None:
    # GIVEN account clients asked by a harness that passes no function ARN
    member = accounts.add_member_account(world)
    session = boto3.session.Session(region_name=world.region)
    own = account_clients.Clients(sm=session.client("secretsmanager"), iam=session.client("iam"))
    clients = account_clients.AccountClients(
        own=own,
        settings=Settings(region=world.region, cross_account_role_name=ROLE),
        session=session,
        config=session.client("sts").meta.config,
    )
    # WHEN a secret of the function's account is named by ARN, or by name / THEN own clients
    for secret_id in (world.secret_arn, "ses-smtp-rotator"):
        assert clients.for_secret(secret_id, function_arn=None, function_name=None) is own
    # AND a member's secret still goes through the member role
    via_role = clients.for_secret(member.secret_arn, function_arn=None, function_name=None)
    assert via_role.account == member.account_id
    assert member.sessions() == [(member.role_arn, account_clients.DEFAULT_SESSION_NAME)]


def test_extra_ses_regions_fill_the_passwords_map_of_a_member_secret(
    make_world: Callable[..., World],
) -> None:
    # GIVEN a cross-account function with extra SES regions
    world = central(make_world, EXTRA_SES_REGIONS="us-west-2, eu-central-1")
    member = accounts.add_member_account(world)
    # WHEN the member's secret rotates
    assert member.driver.rotate().ok
    # THEN its passwords map holds each extra region's password, derived from the stored key
    value = member.value()
    key = value["secret_access_key"]
    assert value["passwords"] == {
        region: derive_smtp_password(key, region) for region in ("us-west-2", "eu-central-1")
    }
    assert value["password"] == derive_smtp_password(key, world.region)


def test_the_fidelity_fix_refuses_assume_role_of_a_role_that_does_not_exist(world: World) -> None:
    # GIVEN a member account without the role, and one with it
    sts = boto3.session.Session(region_name=world.region).client("sts")
    missing = f"arn:aws:iam::{accounts.MEMBER_ACCOUNT}:role/{ROLE}"
    # WHEN the role that does not exist is assumed / THEN STS answers AccessDenied, as AWS does
    with pytest.raises(ClientError) as refused:
        sts.assume_role(RoleArn=missing, RoleSessionName="probe")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert missing in refused.value.response["Error"]["Message"]
    # AND once deployed (trusting this account) it is assumed, and acts in the member account
    member = accounts.add_member_account(world)
    credentials = sts.assume_role(RoleArn=member.role_arn, RoleSessionName="probe")["Credentials"]
    assumed = boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=world.region,
    )
    assert assumed.client("sts").get_caller_identity()["Account"] == member.account_id
    # AND a role under the same name in another path is not the one asked for
    other = accounts.pinned(boto3.session.Session(region_name=world.region).client("iam"), "1" * 12)
    policy = json.dumps(accounts.trust_policy(world.driver.account_id))
    other.create_role(RoleName=ROLE, Path="/team/", AssumeRolePolicyDocument=policy)
    with pytest.raises(ClientError, match="AccessDenied"):
        sts.assume_role(RoleArn=f"arn:aws:iam::{'1' * 12}:role/{ROLE}", RoleSessionName="probe")


def test_extra_ses_regions_are_derived_anew_at_every_rotation_next_to_listed_ones(
    make_world: Callable[..., World],
) -> None:
    # GIVEN a secret whose value already lists a region, and two extra regions for the function
    world = make_world(
        function_env={"EXTRA_SES_REGIONS": "eu-central-1,us-west-2"},
        bootstrap={"passwords": {"ap-south-1": None}},
    )
    for _ in range(2):
        # WHEN it rotates (the SMTP server accepts only the main region's password)
        assert world.rotate().ok
        # THEN every listed region's password is derived from the new key
        value = world.value()
        key = value["secret_access_key"]
        regions = ("ap-south-1", "eu-central-1", "us-west-2")
        assert value["passwords"] == {r: derive_smtp_password(key, r) for r in regions}
        assert world.login().ok


def test_a_new_world_starts_the_function_cold_without_the_last_worlds_credentials() -> None:
    # GIVEN a world whose function assumed a member's role (its warm runtime keeps the credentials)
    with local_world(function_env=CROSS_ACCOUNT) as first:
        assert accounts.add_member_account(first).driver.rotate().ok
    # WHEN a new world (a new moto, the same environment) has the member without the role
    with local_world(function_env=CROSS_ACCOUNT) as second:
        member = accounts.add_member_account(second, role_name=None)
        rotation = member.driver.rotate(max_attempts=1)
    # THEN the function assumed the role afresh and was refused; it did not use the old
    # world's credentials (which no longer exist, so moto would answer in its default account)
    error = rotation.attempts[-1].error
    assert isinstance(error, CrossAccountError)
    assert member.role_arn in str(error)
