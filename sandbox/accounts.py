"""A member account in the local world: its SMTP user, its secret, the role the function assumes.

The world's own account (moto's default, where the fake credentials land) plays the central
account that runs the rotation function. :func:`add_member_account` sets up a second account the
way ``fleet/member-role.yaml`` and an app's stack would: the IAM user, the secret with its
bootstrap value, and the member role trusting the central account. Its resources are created with
clients pinned to that account by moto's ``x-moto-account-id`` header (moto's documented way to
act in another account); the rotation function itself reaches it only by assuming the role.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import boto3
from moto.sts.models import sts_backends

from sandbox import apps, moto_fidelity, secrets_manager
from sandbox.secrets_manager import SecretsManagerDriver
from sandbox.world import login_with

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from sandbox.world import World
    from ses_smtp_rotator import smtp

MEMBER_ACCOUNT: Final = "210987654321"
MEMBER_ROLE_NAME: Final = "ses-smtp-rotation-member"


def pinned(client: Any, account_id: str) -> Any:  # noqa: ANN401 - any boto3 client, returned as is
    """Make every request of ``client`` act in ``account_id`` (moto's account header)."""

    def add_header(request: Any, **_: Any) -> None:  # noqa: ANN401 - botocore's AWSRequest
        request.headers["x-moto-account-id"] = account_id

    client.meta.events.register("before-sign.*.*", add_header)
    return client


def trust_policy(central_account: str) -> dict[str, Any]:
    """Return the member role's trust policy: the central account's principals may assume it."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{central_account}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


@dataclass
class MemberAccount:
    """A member account's app: clients pinned to it, its user, its secret and its driver."""

    account_id: str
    region: str
    user_name: str
    secret_arn: str
    role_arn: str
    iam: IAMClient
    sm: SecretsManagerClient
    driver: SecretsManagerDriver
    world: World = field(repr=False)

    def value(self, stage: str = "AWSCURRENT") -> dict[str, Any]:
        """Return the JSON value of a version of the member's secret."""
        text = self.sm.get_secret_value(SecretId=self.secret_arn, VersionStage=stage)
        loaded: dict[str, Any] = json.loads(text["SecretString"])
        return loaded

    def access_keys(self) -> dict[str, str]:
        """Return the member user's access keys: id -> status."""
        response = self.iam.list_access_keys(UserName=self.user_name)
        return {k["AccessKeyId"]: k["Status"] for k in response["AccessKeyMetadata"]}

    def user_tags(self) -> dict[str, str]:
        """Return the member user's tags (the function's records live there)."""
        tags = self.iam.list_user_tags(UserName=self.user_name)["Tags"]
        return {tag["Key"]: tag["Value"] for tag in tags}

    def login(self, stage: str = "AWSCURRENT") -> smtp.ProbeResult:
        """Log in to the world's SMTP server with a version's credentials."""
        return login_with(self.value(stage), self.world)

    def rotation_token_received(self, version_id: str) -> str | None:
        """Return the RotationToken that the PutSecretValue of a version carried, if any."""
        return moto_fidelity.rotation_token_received(
            self.secret_arn, version_id, account_id=self.account_id, region=self.region
        )

    def sessions(self) -> list[tuple[str, str]]:
        """Each AssumeRole into this account so far: (role ARN, session name)."""
        assumed = sts_backends[self.account_id]["aws"].assumed_roles
        return [(role.role_arn, role.session_name) for role in assumed]

    def sweep(self) -> dict[str, str]:
        """Invoke the function with the sweep event for the member's secret."""
        return secrets_manager.sweep(self.driver, self.secret_arn)


def add_member_account(  # noqa: PLR0913 - every option is keyword-only and has a default
    world: World,
    *,
    account_id: str = MEMBER_ACCOUNT,
    role_name: str | None = MEMBER_ROLE_NAME,
    trusted_account: str | None = None,
    user_name: str = "ses-smtp-app",
    secret_name: str = "ses-smtp-app",  # noqa: S107 - a name, not a password
) -> MemberAccount:
    """Set up an app in another account of ``world`` and return it (also in ``world.members``).

    ``role_name=None`` deploys no member role (the "role missing" case); ``trusted_account`` is
    the account the role trusts (default: the world's, where the function runs).
    """
    session = boto3.session.Session(region_name=world.region)
    iam: IAMClient = pinned(session.client("iam"), account_id)
    sm: SecretsManagerClient = pinned(session.client("secretsmanager"), account_id)
    central = world.driver.account_id
    role_arn = f"arn:aws:iam::{account_id}:role/{role_name or MEMBER_ROLE_NAME}"
    if role_name is not None:
        policy = trust_policy(trusted_account or central)
        role_arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(policy))[
            "Role"
        ]["Arn"]
    value = {
        "iam_user_name": user_name,
        "region": world.region,
        "host": world.ses.host,
        "port": world.ses.port,
    }
    arn = apps.create_app(iam, sm, user_name=user_name, secret_name=secret_name, value=value)
    driver = SecretsManagerDriver(
        secret_id=arn, handler=world.driver.handler, region=world.region, account_id=account_id
    )
    driver.enable_rotation()
    member = MemberAccount(
        account_id=account_id,
        region=world.region,
        user_name=user_name,
        secret_arn=arn,
        role_arn=role_arn,
        iam=iam,
        sm=sm,
        driver=driver,
        world=world,
    )
    world.members.append(member)
    return member
