"""The custom resource ``Custom::SmtpUserKeys``: an app's stack takes its user's keys with it.

CloudFormation cannot delete an IAM user that still has access keys, and the keys are made by the
rotation, not by the stack. An app's stack therefore declares ``Custom::SmtpUserKeys`` (properties
``UserName`` and ``SecretId``, served by the rotation function itself), which CloudFormation
deletes before the user:

- Create/Update: the gate must admit the secret and the user together (the secret's rules, the
  user's path and its binding to that secret). ``PhysicalResourceId`` is the user name.
- Delete: every access key of the user is deleted and the function's own user tags
  (``ses-smtp-rotation:intent``, ``:retire``) are removed. A user already gone is a success, and
  so is a user bound to no secret (no key of the rotation's is there: nothing is deleted).
  Anyone who may invoke the function can send a Delete, so the request's fields are only where
  to look: CloudFormation itself must show the requesting stack deleting this
  ``Custom::SmtpUserKeys`` resource of this user, the secret the user is bound to must be a
  resource of that stack, and that secret must no longer rotate (the stack removes its rotation
  schedule first). Otherwise the keys are left alone (:func:`rotation_handler.gate.check_teardown`).

How the request arrives and the answer goes back is :mod:`rotation_handler.cloudformation`'s.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from rotation_handler import gate, lifecycle, user_change
from rotation_handler.cloudformation import Answer, Request
from rotation_handler.exceptions import (
    AccessKeyError,
    BadEventError,
    NotBoundError,
    NotInFleetError,
    RotationError,
    StagingError,
    error_code,
)
from rotation_handler.observability import logger
from rotation_handler.settings import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from mypy_boto3_iam import IAMClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from rotation_handler.settings import Settings
    from rotation_handler.state import SecretState

RESOURCE_TYPE: Final = "Custom::SmtpUserKeys"
# Every type this function serves (the single template's Custom::SmtpUserChange included).
SERVED_TYPES: Final = frozenset({RESOURCE_TYPE, user_change.RESOURCE_TYPE})
REQUEST_TYPES: Final = ("Create", "Update", "Delete")
# PhysicalResourceId of a resource whose Create failed: its Delete (the roll-back) does nothing.
# ":" cannot occur in an IAM user name, so it is never taken for one.
NOT_CREATED: Final = "not-created:"
_USER_NAME: Final = re.compile(r"^[\w+=,.@-]{1,64}$")
_MAX_REASON: Final = 1000


class StackReader(Protocol):
    """The one CloudFormation call the key clean-up makes (a boto3 ``cloudformation`` client)."""

    def describe_stack_resources(self, *, StackName: str) -> Mapping[str, Any]:  # noqa: N803 - boto3's name
        """Return the stack's resources (``StackResources``)."""


class Runtime(Protocol):
    """What the function built at its cold start (settings and clients)."""

    @property
    def settings(self) -> Settings:
        """The function's settings."""

    @property
    def sm(self) -> SecretsManagerClient:
        """The Secrets Manager client."""

    @property
    def iam(self) -> IAMClient:
        """The IAM client."""

    @property
    def cloudformation(self) -> StackReader:
        """The CloudFormation client (asked whether a stack is deleting the resource)."""


def serve(request: Request, runtime: Callable[[], Runtime]) -> Answer:
    """Handle the request; any failure (a bad configuration included) becomes a FAILED answer."""
    try:
        rt = runtime()
        return handle(request, rt)
    except (RotationError, ConfigurationError, ClientError, BotoCoreError) as err:
        reason = str(err)
    except Exception as err:  # noqa: BLE001 - CloudFormation would wait an hour for an answer
        logger.exception("custom resource request failed unexpectedly")
        reason = f"{type(err).__name__} in the rotation function: see its log"
    if request.request_type == "Create":
        physical_id = f"{NOT_CREATED}{request.request_id}"
    else:
        physical_id = request.physical_id or f"{NOT_CREATED}{request.request_id}"
    return Answer(status="FAILED", physical_id=physical_id, reason=reason[:_MAX_REASON])


def handle(request: Request, rt: Runtime) -> Answer:
    """Validate (Create, Update) or clean up (Delete) the app's IAM user; or serve a user change.

    ``Custom::SmtpUserChange`` (the single template's) is :mod:`rotation_handler.user_change`'s.

    Raises
    ------
    BadEventError
        Not a ``Custom::SmtpUserKeys`` request, or ``UserName``/``SecretId`` missing.
    NotBoundError
        The gate refuses the secret, the user or their binding (fleet mode:
        :class:`~rotation_handler.exceptions.NotInFleetError`), or (Delete) CloudFormation does
        not confirm the teardown.
    """
    if request.resource_type == user_change.RESOURCE_TYPE and request.request_type in REQUEST_TYPES:
        return user_change.handle(request, rt)
    if request.resource_type != RESOURCE_TYPE or request.request_type not in REQUEST_TYPES:
        msg = (
            f"unsupported request {request.request_type[:20]!r} for {request.resource_type[:60]!r}"
            f": this function serves Create, Update and Delete of {RESOURCE_TYPE} and "
            f"{user_change.RESOURCE_TYPE}"
        )
        raise BadEventError(msg)
    if request.request_type == "Delete":
        physical_id = request.physical_id or ""
        if physical_id.startswith(NOT_CREATED):
            return Answer(status="SUCCESS", physical_id=physical_id, reason="nothing was created")
        return delete_keys(request, rt, user=_user_name(physical_id))
    user, secret_id = _user_name(request.properties.get("UserName")), _secret_id(request)
    state = gate.admit_secret(rt.sm, secret_id, rt.settings)
    gate.admit_user(rt.iam, rt.settings, state, user, records=True)
    return Answer(status="SUCCESS", physical_id=user)


def delete_keys(request: Request, rt: Runtime, *, user: str) -> Answer:
    """Delete every access key of ``user`` and the function's tags on it, once the gate agrees.

    Raises
    ------
    NotBoundError
        The user is outside the fleet or not ``SMTP_IAM_USER_NAME``, or CloudFormation does not
        confirm that the requesting stack is tearing down the user's bound secret, or that
        secret still rotates (its readers use these keys).
    """
    settings, iam = rt.settings, rt.iam
    gone = Answer(status="SUCCESS", physical_id=user, reason="the IAM user no longer exists")
    gate.check_user_name(settings, None, user)
    try:
        found_user = gate.read_user(iam, settings, user)
    except NotInFleetError:
        # A path-scoped policy answers a user that is gone like one outside the path: either
        # way the fleet function holds no key of it, and the stack must be able to go.
        return Answer(
            status="SUCCESS",
            physical_id=user,
            reason="the IAM user is gone or outside the fleet's path: nothing was deleted",
        )
    if found_user is None:
        return gone
    gate.check_path(settings, found_user)
    bound = found_user.records.bound_to or found_user.records.legacy_owner
    if bound is None:
        return Answer(
            status="SUCCESS",
            physical_id=user,
            reason="the user is bound to no secret (no key of the rotation's): nothing was deleted",
        )
    claim = gate.Teardown(stack_id=request.stack_id, logical_id=request.logical_id)
    bound = gate.check_teardown(_stack_resources(rt.cloudformation, claim), claim, found_user)
    try:
        bound_secret: SecretState | None = gate.admit_secret(rt.sm, bound, settings)
    except StagingError:  # gone: nothing reads the keys through it any more
        bound_secret = None
    gate.check_rotation_off(bound_secret)
    try:
        deleted = lifecycle.delete_user_keys(iam, found_user)
    except AccessKeyError:  # ListAccessKeys: the user went meanwhile
        return gone
    return Answer(status="SUCCESS", physical_id=user, reason=f"deleted {len(deleted)} access keys")


def _stack_resources(cfn: StackReader, claim: gate.Teardown) -> list[Mapping[str, Any]]:
    """Ask CloudFormation for the claimed stack's resources (the request only says which)."""
    try:
        found: list[Mapping[str, Any]] = cfn.describe_stack_resources(StackName=claim.stack_id)[
            "StackResources"
        ]
    except ClientError as err:
        msg = (
            f"CloudFormation could not confirm that stack {claim.stack_id[:200]} is deleting the "
            f"resource ({error_code(err)}): the user's keys are left alone"
        )
        raise NotBoundError(msg) from err
    return found


def _user_name(value: object) -> str:
    if not isinstance(value, str) or not _USER_NAME.fullmatch(value):
        msg = f"the {RESOURCE_TYPE} resource needs UserName, an IAM user name"
        raise BadEventError(msg)
    return value


def _secret_id(request: Request) -> str:
    value = request.properties.get("SecretId")
    if not isinstance(value, str) or not value:
        msg = f"the {RESOURCE_TYPE} resource needs SecretId, the app's secret ARN"
        raise BadEventError(msg)
    return value
