"""The one gate: whether a secret may make the function act on an IAM user, and on a key.

Every entry point (the four steps, the sweep, the custom resource) asks here before its first
write, and holds no rule of its own. Each rule rests on a fact that an app's operator, who may
write only their own secret, cannot set (``docs/security.md`` tabulates them with their tests):

- the secret is ``SECRET_ARN`` / carries the fleet's tag (configuration; the app's stack);
- the user is ``SMTP_IAM_USER_NAME`` / under ``FLEET_USER_PATH`` (configuration; IAM);
- the user is bound to the secret: its tag ``ses-smtp-rotation:bound-to`` is the secret's ARN
  (the app's stack, an administrator, or a single-secret function's first rotation);
- the sweep retires a key only on this secret's finishSecret's record of it (the function);
- the key clean-up deletes a user's keys only while CloudFormation shows the requesting stack
  deleting the resource, holding the bound secret, whose rotation is off (the stack's owner);
- a change to ``SMTP_IAM_USER_NAME`` rotates ``SECRET_ARN`` only, never a secret a request names.
A secret's value, an event's fields, a request's properties only choose what to ask about.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from botocore.exceptions import ClientError

from rotation_handler import records
from rotation_handler.exceptions import (
    AccessKeyError,
    HiddenUserError,
    NotBoundError,
    NotInFleetError,
    StagingError,
    UserOwnedError,
    error_code,
)
from rotation_handler.records import User
from rotation_handler.state import SecretState, describe_answer
from ses_smtp_rotator.contract import BINDING_TAG, LEGACY_OWNER_TAG

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mypy_boto3_iam import IAMClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from rotation_handler.settings import Settings

DENIED: Final = frozenset({"AccessDenied", "AccessDeniedException"})
_DELETING: Final = "DELETE_IN_PROGRESS"  # the stack's deletion, a roll-back, an update's clean-up
_SECRET: Final = "AWS::SecretsManager::Secret"  # noqa: S105 - a resource type
_LEFT_ALONE: Final = "the user's keys are left alone"
_TAG_IT: Final = "Tag it to let this function rotate it, or rotate it with another function"


def admit_secret(sm: SecretsManagerClient, secret_id: str, settings: Settings) -> SecretState:
    """Describe the secret once, apply :func:`check_secret` (``StagingError``: no such secret)."""
    try:
        meta = sm.describe_secret(SecretId=secret_id)
    except ClientError as err:
        if error_code(err) == "ResourceNotFoundException":
            msg = f"secret {secret_id} does not exist: check the SecretId of the rotation"
            raise StagingError(msg) from err
        fleet, code = settings.fleet, error_code(err)
        if fleet is None or code not in DENIED:
            raise
        msg = (
            f"Secrets Manager refused to describe secret {secret_id} ({code}): the fleet "
            f"function may only read secrets carrying the tag {fleet.tag_key}={fleet.tag_value} "
            f"(FLEET_TAG_KEY, FLEET_TAG_VALUE). {_TAG_IT}"
        )
        raise NotInFleetError(msg) from err
    state = describe_answer(meta)
    check_secret(state, settings, secret_id=secret_id)
    return state


def own_secret(settings: Settings, user: object) -> str | None:
    """Return the secret a change to ``user`` may rotate: ``SECRET_ARN``, if bound to ``user``.

    ``None`` when the function is bound to another user; ``NotBoundError`` in a fleet.
    """
    if not settings.secret_arn or settings.fleet is not None:
        msg = "only a single-secret function (SECRET_ARN) rotates on a change of user"
        raise NotBoundError(msg)
    return settings.secret_arn if user == settings.iam_user_name else None


def check_secret(state: SecretState, settings: Settings, *, secret_id: str = "") -> None:
    """Refuse a secret that is not ``SECRET_ARN``, or (fleet) lacks the fleet's tag."""
    if settings.secret_arn and settings.secret_arn not in (state.arn, secret_id):
        msg = (
            f"this function is bound to secret {settings.secret_arn} (SECRET_ARN) and refuses "
            f"to rotate {state.arn}: deploy one rotation function per secret"
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
        + _TAG_IT
    )
    raise NotInFleetError(msg)


def check_user_name(settings: Settings, secret: SecretState | None, name: str) -> None:
    """Refuse a user other than ``SMTP_IAM_USER_NAME``, named by ``secret`` or a request."""
    expected = settings.iam_user_name
    if not expected or name == expected:
        return
    bound = f"this function is bound to {expected} (SMTP_IAM_USER_NAME)"
    msg = f"{bound} and refuses IAM user {name}"
    if secret is not None:
        msg = f"secret {secret.arn} names IAM user {name} but {bound}: fix its iam_user_name"
    raise NotBoundError(msg)


def read_user(iam: IAMClient, settings: Settings, name: str) -> User | None:
    """Return the user (one GetUser), or ``None`` when IAM says it does not exist.

    Fleet mode: ``AccessDenied`` (a path-scoped policy's answer to both) is ``HiddenUserError``.
    """
    try:
        found = iam.get_user(UserName=name)["User"]
    except ClientError as err:
        if error_code(err) == "NoSuchEntity":
            return None
        if error_code(err) not in DENIED or settings.fleet is None:
            raise
        msg = (
            f"IAM refused to read user {name} ({error_code(err)}): it is outside this fleet's "
            f"{settings.fleet.user_path} (FLEET_USER_PATH), or does not exist (a path-scoped "
            f"policy answers both alike). Check with: aws iam get-user --user-name {name}"
        )
        raise HiddenUserError(msg) from err
    tags = {tag["Key"]: tag["Value"] for tag in found.get("Tags", [])}
    return User(name=name, path=str(found.get("Path") or "/"), tags=tags)


class Asker(Protocol):
    """What an invocation brings to the gate (a :class:`rotation_handler.context.StepContext`)."""

    @property
    def iam(self) -> IAMClient:
        """The IAM client of the secret's account."""

    @property
    def settings(self) -> Settings:
        """The function's settings."""

    @property
    def state(self) -> SecretState:
        """The secret, as the gate admitted it."""

    @property
    def users(self) -> dict[str, User]:
        """The users admitted during this invocation (each is read once)."""


def admit(asker: Asker, name: str, *, records: bool = False) -> User | None:
    """Ask about user ``name`` once per invocation; see :func:`admit_user`."""
    if name in asker.users:
        return asker.users[name]
    user = admit_user(asker.iam, asker.settings, asker.state, name, records=records)
    if user is not None:
        asker.users[name] = user
    return user


def admit_read(asker: Asker, name: str) -> User:
    """Ask about user ``name`` and return it as read (its records included)."""
    if (user := admit(asker, name, records=True)) is None:  # pragma: no cover - always read
        raise AssertionError(name)
    return user


def admit_user(
    iam: IAMClient, settings: Settings, secret: SecretState, name: str, *, records: bool
) -> User | None:
    """Apply every rule between ``secret`` and the user ``name``; return the user when read.

    ``records=False`` is for a step that needs nothing from the user's tags: when the
    configuration binds both the secret and the user (a single-secret function), the names are
    the whole rule and no call is made (``None`` is returned). Raises ``NotBoundError`` (or a
    subclass) when a rule fails, ``AccessKeyError`` when the user does not exist.
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
    """Refuse a user outside ``FLEET_USER_PATH`` (fleet mode)."""
    fleet = settings.fleet
    if fleet is None or user.path.startswith(fleet.user_path):
        return
    msg = (
        f"IAM user {user.name} has path {user.path}, outside this fleet's {fleet.user_path} "
        "(FLEET_USER_PATH): its keys are not touched. Create the app's user under the path"
    )
    raise NotInFleetError(msg)


def check_binding(settings: Settings, secret: SecretState, user: User) -> None:
    """Refuse unless the user is bound to ``secret``, or this configuration may claim it.

    ``UserOwnedError`` names the other secret it is bound to; ``NotBoundError``: bound to none.
    """
    found = user.records
    if found.bound_to == secret.arn:
        return
    if found.bound_to is not None:
        msg = (
            f"IAM user {user.name} is bound to secret {found.bound_to} (tag {BINDING_TAG}), not "
            f"to {secret.arn}: give each secret its own IAM user. Only if that secret no longer "
            f"exists: aws iam tag-user --user-name {user.name} --tags {_binding(secret)}"
        )
        raise UserOwnedError(msg)
    if found.legacy_owner not in (None, secret.arn):
        msg = (
            f"IAM user {user.name} is managed by secret {found.legacy_owner} (tag "
            f"{LEGACY_OWNER_TAG}), not by {secret.arn}: give each secret its own IAM user. Only "
            f"if that secret no longer exists: aws iam untag-user --user-name {user.name} "
            f"--tag-keys {LEGACY_OWNER_TAG}"
        )
        raise UserOwnedError(msg)
    if settings.binds_by_configuration:
        return
    msg = (
        f"IAM user {user.name} is bound to no secret, so secret {secret.arn} may not act on it. "
        "Deploy the app with its stack (which binds them), or, if you may tag IAM users and this "
        f"user is the app's: aws iam tag-user --user-name {user.name} --tags {_binding(secret)}"
    )
    raise NotBoundError(msg)


def _binding(secret: SecretState) -> str:
    return f"Key={BINDING_TAG},Value={secret.arn}"


def claim(settings: Settings, secret: SecretState, user: User) -> dict[str, str]:
    """Return the binding a single-secret function writes at its user's first rotation, if any."""
    if settings.binds_by_configuration and user.records.bound_to != secret.arn:
        return records.binding(secret.arn)
    return {}


def may_retire(secret: SecretState, user: User, access_key_id: str) -> bool:
    """Whether the sweep may retire ``access_key_id``: this secret's finishSecret recorded it."""
    recorded = user.records.retirement
    return recorded is not None and recorded.is_for(secret.arn, access_key_id)


@dataclass(frozen=True, kw_only=True)
class Teardown:
    """A Delete's claims: which stack, and which of its resources."""

    stack_id: str
    logical_id: str


def check_teardown(stack: list[Mapping[str, Any]], claim: Teardown, user: User) -> str:
    """Refuse a Delete unless ``stack`` (CloudFormation's DescribeStackResources) shows it real.

    The stack's ``Custom::SmtpUserKeys`` of this user is ``DELETE_IN_PROGRESS`` and the user's
    bound secret, returned, is the same stack's (:func:`check_rotation_off` then applies).
    """
    bound = user.records.bound_to or user.records.legacy_owner or ""
    where = f"stack {claim.stack_id[:200]}"
    resource = next((r for r in stack if r.get("LogicalResourceId") == claim.logical_id), {})
    shown = (resource.get(k) for k in ("ResourceType", "PhysicalResourceId", "ResourceStatus"))
    if tuple(shown) != ("Custom::SmtpUserKeys", user.name, _DELETING):
        msg = f"CloudFormation does not show {where} deleting this user's Custom::SmtpUserKeys: "
        raise NotBoundError(msg + _LEFT_ALONE)
    secrets = {i.get("PhysicalResourceId") for i in stack if i.get("ResourceType") == _SECRET}
    if bound not in secrets:
        msg = f"IAM user {user.name} is bound to secret {bound}, not a resource of {where}: "
        raise NotBoundError(msg + _LEFT_ALONE)
    return bound


def check_rotation_off(state: SecretState | None) -> None:
    """Refuse while the bound secret still rotates (``None``: it is gone): readers use the keys."""
    if state is None or state.deleted or not state.rotation_enabled:
        return
    msg = (
        f"secret {state.arn} still has rotation turned on, so its readers use these keys: "
        "they are left alone. Delete the stack's rotation schedule first, or run aws "
        f"secretsmanager cancel-rotate-secret --secret-id {state.arn} and delete again"
    )
    raise NotBoundError(msg)
