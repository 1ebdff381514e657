"""The one gate: whether a secret may make the function act on an IAM user, and on a key.

Every entry point asks here before its first write: the four steps, the sweep and the custom
resource hold no rule of their own. Each rule rests on a fact that an app's operator, who may
write only their own secret's value, cannot set:

================================  ===============================  ==============================
rule                              fact                             set by
================================  ===============================  ==============================
the secret is ``SECRET_ARN``      the function's configuration     the deployment
the secret carries the fleet tag  the secret's tags                the app's stack
the user is ``SMTP_IAM_USER_NAME``  the function's configuration   the deployment
the user is under the fleet path  the user's IAM path              whoever may create IAM users
the user is bound to the secret   the user's tag                   the app's stack, an
                                  ``ses-smtp-rotation:bound-to``   administrator (adoption), or
                                  = the secret's ARN               a single-secret function's
                                                                   first rotation
the sweep retires this key        finishSecret's retirement        the function, for this secret
                                  record names secret and key
the clean-up deletes every key    CloudFormation: the requesting   the stack's owner
                                  stack is deleting the resource
                                  and holds the bound secret
================================  ===============================  ==============================

A secret's value (``iam_user_name``, key ids), an event's fields and a custom resource request's
properties are claims: they choose what to ask about, never the answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

from botocore.exceptions import ClientError

from rotation_handler import intents
from rotation_handler.exceptions import (
    AccessKeyError,
    NotBoundError,
    NotInFleetError,
    StagingError,
    UserOwnedError,
)
from rotation_handler.keys import error_code
from rotation_handler.state import SecretState, describe_answer
from ses_smtp_rotator.contract import BINDING_TAG, LEGACY_OWNER_TAG

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mypy_boto3_iam import IAMClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from rotation_handler.settings import Settings

DENIED: Final = frozenset({"AccessDenied", "AccessDeniedException"})
# What CloudFormation shows for a resource it is deleting (a stack's deletion, a roll-back, or
# an update's clean-up of a removed or replaced resource).
_DELETING: Final = "DELETE_IN_PROGRESS"
_SECRET_RESOURCE: Final = "AWS::SecretsManager::Secret"  # noqa: S105 - a resource type


def adopt_command(user: str, secret_arn: str) -> str:
    """Return the command that binds ``user`` to a secret (run by someone who may tag users)."""
    return f"aws iam tag-user --user-name {user} --tags Key={BINDING_TAG},Value={secret_arn}"


@dataclass(frozen=True, kw_only=True)
class User:
    """An IAM user as GetUser answered: its path and tags (the function's records among them)."""

    name: str
    path: str
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def records(self) -> intents.UserRecords:
        """The binding, intent and retirement recorded on the user."""
        return intents.UserRecords.from_tags(self.tags)


# -- the secret ----------------------------------------------------------------------------------


def admit_secret(sm: SecretsManagerClient, secret_id: str, settings: Settings) -> SecretState:
    """Read the secret's description once and apply the secret's rules.

    Raises
    ------
    StagingError
        The secret does not exist.
    NotBoundError
        ``SECRET_ARN`` is set and names another secret.
    NotInFleetError
        Fleet mode, and the secret lacks the fleet's tag (or Secrets Manager denied the read).
    """
    try:
        meta = sm.describe_secret(SecretId=secret_id)
    except ClientError as err:
        if error_code(err) == "ResourceNotFoundException":
            msg = f"secret {secret_id} does not exist: check the SecretId of the rotation"
            raise StagingError(msg) from err
        _refuse_denied_secret(err, secret_id, settings)
        raise
    state = describe_answer(meta)
    check_secret(state, settings, secret_id=secret_id)
    return state


def check_secret(state: SecretState, settings: Settings, *, secret_id: str = "") -> None:
    """Apply the secret's rules to a state already read (``SECRET_ARN``, the fleet's tag).

    Raises
    ------
    NotBoundError
        ``SECRET_ARN`` names another secret.
    NotInFleetError
        Fleet mode, and the secret lacks ``FLEET_TAG_KEY=FLEET_TAG_VALUE``.
    """
    if settings.secret_arn and settings.secret_arn not in (state.arn, secret_id):
        msg = (
            f"this function is bound to secret {settings.secret_arn} (SECRET_ARN) and refuses "
            f"{state.arn}: deploy one rotation function per secret"
        )
        raise NotBoundError(msg)
    fleet = settings.fleet
    if fleet is None or state.tags.get(fleet.tag_key) == fleet.tag_value:
        return
    found = state.tags.get(fleet.tag_key)
    has = "no such tag" if found is None else f"{fleet.tag_key}={found}"
    msg = (
        f"secret {state.arn} is not in fleet {fleet.tag_value}: it must carry the tag "
        f"{fleet.tag_key}={fleet.tag_value} (FLEET_TAG_KEY, FLEET_TAG_VALUE) and has {has}. "
        "Tag it to let this function rotate it, or rotate it with another function"
    )
    raise NotInFleetError(msg)


def _refuse_denied_secret(err: ClientError, secret_id: str, settings: Settings) -> None:
    """Fleet mode: Secrets Manager's AccessDenied is the policy refusing an untagged secret."""
    fleet, code = settings.fleet, error_code(err)
    if fleet is None or code not in DENIED:
        return
    msg = (
        f"Secrets Manager refused to describe secret {secret_id} ({code}): the fleet function "
        f"may only read secrets carrying the tag {fleet.tag_key}={fleet.tag_value} "
        "(FLEET_TAG_KEY, FLEET_TAG_VALUE). Tag it to let this function rotate it, or rotate it "
        "with another function"
    )
    raise NotInFleetError(msg) from err


# -- the user ------------------------------------------------------------------------------------


def check_user_name(settings: Settings, secret: SecretState, name: str) -> None:
    """Refuse a user other than ``SMTP_IAM_USER_NAME`` (no call).

    Raises
    ------
    NotBoundError
        ``SMTP_IAM_USER_NAME`` is set and is not ``name``.
    """
    expected = settings.iam_user_name
    if expected and name != expected:
        msg = (
            f"secret {secret.arn} names IAM user {name} but this function is bound to "
            f"{expected} (SMTP_IAM_USER_NAME): fix iam_user_name in the secret"
        )
        raise NotBoundError(msg)


def read_user(iam: IAMClient, settings: Settings, name: str) -> User | None:
    """Return the user (one GetUser: path and tags), or ``None`` when IAM says it does not exist.

    Raises
    ------
    NotInFleetError
        Fleet mode, and IAM refused GetUser: the user is outside the fleet's path, or does not
        exist (a path-scoped policy answers both with AccessDenied).
    """
    try:
        found = iam.get_user(UserName=name)["User"]
    except ClientError as err:
        code = error_code(err)
        if code == "NoSuchEntity":
            return None
        if code in DENIED and settings.fleet is not None:
            msg = (
                f"IAM refused to read user {name} ({code}): it does not exist, or it is outside "
                f"this fleet's {settings.fleet.user_path} (FLEET_USER_PATH; a path-scoped policy "
                "answers both alike). Check the name, and create the app's user under the path"
            )
            raise NotInFleetError(msg) from err
        raise
    tags = {tag["Key"]: tag["Value"] for tag in found.get("Tags", [])}
    return User(name=name, path=str(found.get("Path") or "/"), tags=tags)


def admit_user(
    iam: IAMClient, settings: Settings, secret: SecretState, name: str, *, records: bool
) -> User | None:
    """Apply every rule between ``secret`` and the user ``name``; return the user when read.

    ``records=False`` is for a step that needs nothing from the user's tags: when the
    configuration binds both the secret and the user (a single-secret function), the names are
    the whole rule and no call is made (``None`` is returned).

    Raises
    ------
    NotBoundError
        The user is not ``SMTP_IAM_USER_NAME``, or is bound to no secret
        (:class:`NotBoundError`) or to another (:class:`UserOwnedError`).
    NotInFleetError
        Fleet mode, and the user is outside ``FLEET_USER_PATH``.
    AccessKeyError
        The user does not exist.
    """
    check_user_name(settings, secret, name)
    if not records and settings.binds_by_configuration:
        return None
    user = read_user(iam, settings, name)
    if user is None:
        msg = f"IAM user {name} does not exist: create it or fix iam_user_name in the secret"
        raise AccessKeyError(msg)
    check_path(settings, user)
    check_binding(settings, secret, user)
    return user


def check_path(settings: Settings, user: User) -> None:
    """Refuse a user outside ``FLEET_USER_PATH`` (fleet mode).

    Raises
    ------
    NotInFleetError
        Fleet mode, and the user's path does not start with the fleet's.
    """
    fleet = settings.fleet
    if fleet is None or user.path.startswith(fleet.user_path):
        return
    msg = (
        f"IAM user {user.name} has path {user.path}, outside this fleet's {fleet.user_path} "
        "(FLEET_USER_PATH): its keys are not touched. Create the app's user under the path"
    )
    raise NotInFleetError(msg)


def check_binding(settings: Settings, secret: SecretState, user: User) -> None:
    """Refuse unless the user is bound to ``secret`` (or may be claimed by this configuration).

    Raises
    ------
    UserOwnedError
        The user is bound to another secret (or an earlier version recorded another as owner).
    NotBoundError
        The user is bound to no secret, and the configuration does not name both.
    """
    found = user.records
    if found.bound_to == secret.arn:
        return
    if found.bound_to is not None:
        msg = (
            f"IAM user {user.name} is bound to secret {found.bound_to} (tag {BINDING_TAG}), not "
            f"to {secret.arn}: give each secret its own IAM user"
        )
        raise UserOwnedError(msg)
    if found.legacy_owner not in (None, secret.arn):
        msg = (
            f"IAM user {user.name} is managed by secret {found.legacy_owner} (tag "
            f"{LEGACY_OWNER_TAG}), not by {secret.arn}: give each secret its own IAM user"
        )
        raise UserOwnedError(msg)
    if settings.binds_by_configuration:
        return
    msg = (
        f"IAM user {user.name} is bound to no secret, so secret {secret.arn} may not act on it. "
        "Deploy the app with its stack (which binds them), or, if you may tag IAM users and "
        f"this user is the app's, adopt it: {adopt_command(user.name, secret.arn)}"
    )
    raise NotBoundError(msg)


def claim(settings: Settings, secret: SecretState, user: User) -> dict[str, str]:
    """Return the binding tag a single-secret function writes on its user's first rotation.

    Empty when the user is already bound, or when the configuration does not name both the
    secret and the user (a fleet function never writes a binding).
    """
    if settings.binds_by_configuration and user.records.bound_to != secret.arn:
        return intents.binding(secret.arn)
    return {}


# -- keys ----------------------------------------------------------------------------------------


def may_retire(secret: SecretState, user: User, access_key_id: str) -> bool:
    """Whether the sweep may retire ``access_key_id``: this secret's finishSecret recorded it."""
    recorded = user.records.retirement
    return recorded is not None and recorded.is_for(secret.arn, access_key_id)


# -- the custom resource's Delete ---------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Teardown:
    """What CloudFormation must confirm before the user's keys go with its stack."""

    stack_id: str
    logical_id: str
    user: str
    secret_arn: str


class StackReader(Protocol):
    """The one CloudFormation call the gate makes (a boto3 ``cloudformation`` client)."""

    def describe_stack_resources(self, *, StackName: str) -> Mapping[str, Any]:  # noqa: N803 - boto3's name
        """Return the stack's resources (``StackResources``)."""


def check_teardown(cfn: StackReader, teardown: Teardown) -> None:
    """Ask CloudFormation whether the stack is deleting this resource and holds the bound secret.

    The request's StackId and LogicalResourceId only say where to look: the answer is
    CloudFormation's. The resource must be the stack's ``Custom::SmtpUserKeys`` for this user,
    in ``DELETE_IN_PROGRESS``; the secret the user is bound to must be a resource of the same
    stack (so a stack that merely names another app's user cannot take its keys).

    Raises
    ------
    NotBoundError
        Any of this does not hold, or the stack cannot be read.
    """
    try:
        found = cfn.describe_stack_resources(StackName=teardown.stack_id)["StackResources"]
    except ClientError as err:
        msg = (
            f"CloudFormation could not confirm that stack {teardown.stack_id[:200]} is deleting "
            f"the resource ({error_code(err)}): the keys of IAM user {teardown.user} are left alone"
        )
        raise NotBoundError(msg) from err
    resource = _resource(found, logical_id=teardown.logical_id)
    deleting = (
        resource is not None
        and resource.get("ResourceType") == "Custom::SmtpUserKeys"
        and resource.get("PhysicalResourceId") == teardown.user
        and resource.get("ResourceStatus") == _DELETING
    )
    if not deleting:
        msg = (
            f"CloudFormation does not show stack {teardown.stack_id[:200]} deleting a "
            f"Custom::SmtpUserKeys resource of IAM user {teardown.user}: its keys are left alone"
        )
        raise NotBoundError(msg)
    holds_secret = any(
        item.get("ResourceType") == _SECRET_RESOURCE
        and item.get("PhysicalResourceId") == teardown.secret_arn
        for item in found
    )
    if not holds_secret:
        msg = (
            f"IAM user {teardown.user} is bound to secret {teardown.secret_arn}, which is not a "
            f"resource of stack {teardown.stack_id[:200]}: its keys are left alone"
        )
        raise NotBoundError(msg)


def _resource(found: list[Any], *, logical_id: str) -> Mapping[str, Any] | None:
    return next((item for item in found if item.get("LogicalResourceId") == logical_id), None)
