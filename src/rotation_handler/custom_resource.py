"""The custom resource ``Custom::SmtpUserKeys``: an app's stack takes its user's keys with it.

CloudFormation cannot delete an IAM user that still has access keys, and the keys are made by the
rotation, not by the stack. An app's stack therefore declares ``Custom::SmtpUserKeys`` (properties
``UserName`` and ``SecretId``, served by the rotation function itself), which CloudFormation
deletes before the user:

- Create/Update: the user and the secret must be ones this function may rotate (fleet: the user
  under ``FLEET_USER_PATH``, the secret tagged; one secret: ``SMTP_IAM_USER_NAME`` and
  ``SECRET_ARN``), and the user must not be managed by another secret. ``PhysicalResourceId`` is
  the user name.
- Delete: every access key of the user is deleted and the function's own user tags
  (``ses-smtp-rotation:intent``, ``:secret``, ``:retire``) are removed. A user already gone is a
  success; a user another secret manages, or one outside the fleet, is refused. Anyone who may
  invoke the function can send a Delete, so it acts only when the request proves the app is being
  torn down: the user's owner tag names the request's secret, and that secret is gone or
  scheduled for deletion, or has rotation turned off and (when CloudFormation tagged it) belongs
  to the requesting stack. A user with no owner tag holds no key of the rotation's: nothing is
  deleted.

The answer is a PUT of JSON to the request's ``ResponseURL``: https to an ``amazonaws.com`` host
(where CloudFormation's presigned S3 URLs point), or http to 127.0.0.1 only in the local world
(``SES_SMTP_ROTATION_LOCAL_WORLD``, which no template sets). It never carries a secret, and the
URL is never logged.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from rotation_handler import fleet, guard, intents, keys
from rotation_handler.exceptions import (
    AccessKeyError,
    BadEventError,
    CustomResourceError,
    NotBoundError,
    RotationError,
    UserOwnedError,
)
from rotation_handler.observability import logger

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from mypy_boto3_iam import IAMClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from rotation_handler.settings import Settings

RESOURCE_TYPE: Final = "Custom::SmtpUserKeys"
REQUEST_TYPES: Final = ("Create", "Update", "Delete")
# PhysicalResourceId of a resource whose Create failed: its Delete (the roll-back) does nothing.
# ":" cannot occur in an IAM user name, so it is never taken for one.
NOT_CREATED: Final = "not-created:"
OUR_TAGS: Final = (intents.TAG, intents.OWNER_TAG, intents.RETIRE_TAG)
# The tag CloudFormation puts on what a stack creates (aws: tags cannot be set by anyone else).
_STACK_ID_TAG: Final = "aws:cloudformation:stack-id"
_USER_NAME: Final = re.compile(r"^[\w+=,.@-]{1,64}$")
_PUT_ATTEMPTS: Final = 3
# Where CloudFormation's presigned response URLs point (S3, in every partition).
_AWS_HOST_SUFFIXES: Final = (".amazonaws.com", ".amazonaws.com.cn")
# Set by the sandbox's local world only (its CloudFormation stand-in answers on 127.0.0.1).
LOCAL_WORLD_VARIABLE: Final = "SES_SMTP_ROTATION_LOCAL_WORLD"
_MAX_REASON: Final = 1000


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


@dataclass(frozen=True, kw_only=True)
class Request:
    """The parts of a CloudFormation custom resource request the function uses."""

    request_type: str
    response_url: str
    stack_id: str
    request_id: str
    logical_id: str
    physical_id: str | None
    resource_type: str
    properties: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class Answer:
    """What the function answers CloudFormation."""

    status: Literal["SUCCESS", "FAILED"]
    physical_id: str
    reason: str = ""

    def summary(self) -> dict[str, str]:
        """Return the answer as the invocation's JSON result (no secret in it)."""
        return {
            "Status": self.status,
            "PhysicalResourceId": self.physical_id,
            "Reason": self.reason,
        }


def parse(event: Mapping[str, Any], *, local_world: bool = False) -> Request:
    """Read a custom resource request.

    ``local_world`` also allows http to 127.0.0.1 (the sandbox's CloudFormation stand-in).

    Raises
    ------
    CustomResourceError
        The event has no ResponseURL the function may answer to (https to an AWS host): nothing
        is done, since CloudFormation could not be told.
    """
    url = str(event.get("ResponseURL") or "")
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    aws = parts.scheme == "https" and host.endswith(_AWS_HOST_SUFFIXES)
    local = local_world and parts.scheme == "http" and host == "127.0.0.1"
    if not (aws or local):
        msg = (
            "the custom resource request needs an https ResponseURL on an amazonaws.com host "
            "(CloudFormation's); nothing was done"
        )
        raise CustomResourceError(msg)
    properties = event.get("ResourceProperties")
    return Request(
        request_type=str(event.get("RequestType", "")),
        response_url=url,
        stack_id=str(event.get("StackId", "")),
        request_id=str(event.get("RequestId", "")),
        logical_id=str(event.get("LogicalResourceId", "")),
        physical_id=str(event["PhysicalResourceId"]) if event.get("PhysicalResourceId") else None,
        resource_type=str(event.get("ResourceType", "")),
        properties=properties if isinstance(properties, dict) else {},
    )


def serve(request: Request, runtime: Callable[[], Runtime]) -> Answer:
    """Handle the request; any failure (a bad configuration included) becomes a FAILED answer."""
    try:
        rt = runtime()
        return handle(request, sm=rt.sm, iam=rt.iam, settings=rt.settings)
    except (RotationError, ClientError, BotoCoreError) as err:
        reason = str(err)
    except Exception as err:  # noqa: BLE001 - CloudFormation would wait an hour for an answer
        logger.exception("custom resource request failed unexpectedly")
        reason = f"{type(err).__name__} in the rotation function: see its log"
    if request.request_type == "Create":
        physical_id = f"{NOT_CREATED}{request.request_id}"
    else:
        physical_id = request.physical_id or f"{NOT_CREATED}{request.request_id}"
    return Answer(status="FAILED", physical_id=physical_id, reason=reason[:_MAX_REASON])


def handle(
    request: Request, *, sm: SecretsManagerClient, iam: IAMClient, settings: Settings
) -> Answer:
    """Validate (Create, Update) or clean up (Delete) the app's IAM user.

    Raises
    ------
    BadEventError
        Not a ``Custom::SmtpUserKeys`` request, or ``UserName``/``SecretId`` missing.
    NotBoundError
        The user or the secret is not one this function may touch (fleet mode:
        :class:`~rotation_handler.exceptions.NotInFleetError`), or another secret manages the user.
    """
    if request.resource_type != RESOURCE_TYPE or request.request_type not in REQUEST_TYPES:
        msg = (
            f"unsupported request {request.request_type[:20]!r} for {request.resource_type[:60]!r}"
            f": this function serves Create, Update and Delete of {RESOURCE_TYPE}"
        )
        raise BadEventError(msg)
    if request.request_type == "Delete":
        physical_id = request.physical_id or ""
        if physical_id.startswith(NOT_CREATED):
            return Answer(status="SUCCESS", physical_id=physical_id, reason="nothing was created")
        user = _user_name(physical_id or request.properties.get("UserName"))
        return delete_keys(
            iam,
            settings,
            user=user,
            secret_id=_secret_id(request),
            sm=sm,
            stack_id=request.stack_id,
        )
    user, secret_id = _user_name(request.properties.get("UserName")), _secret_id(request)
    if not _check_user(iam, settings, user):
        msg = f"IAM user {user} does not exist: create it before this resource (DependsOn)"
        raise AccessKeyError(msg)
    state = guard.describe(sm, secret_id, settings)
    if settings.secret_arn and settings.secret_arn not in (state.arn, secret_id):
        msg = f"this function is bound to {settings.secret_arn} (SECRET_ARN), not {state.arn}"
        raise NotBoundError(msg)
    fleet.check_secret(state, settings)
    _check_owner(iam, user, state.arn)
    return Answer(status="SUCCESS", physical_id=user)


def delete_keys(  # noqa: PLR0913 - keyword-only facts of one request
    iam: IAMClient,
    settings: Settings,
    *,
    user: str,
    secret_id: str,
    sm: SecretsManagerClient,
    stack_id: str,
) -> Answer:
    """Delete every access key of ``user`` and the function's tags on it (a user gone is done).

    Only for the secret that owns the user (its owner tag), once that secret is being torn down
    (:func:`_check_torn_down`): a Delete anyone could send must not take a live app's keys.

    Raises
    ------
    NotBoundError
        The user is outside the fleet, not ``SMTP_IAM_USER_NAME``, or managed by another secret;
        or the secret still rotates, or belongs to another stack.
    """
    gone = Answer(status="SUCCESS", physical_id=user, reason="the IAM user no longer exists")
    try:
        if not _check_user(iam, settings, user):
            return gone
        tags = keys.read_tags(iam, user)
        owner = intents.UserRecords.from_tags(tags).owner
        if owner is None:
            return Answer(
                status="SUCCESS",
                physical_id=user,
                reason="no secret owns the user (no key of the rotation's): nothing was deleted",
            )
        _check_owner(iam, user, secret_id, tags=tags)
        _check_torn_down(sm, settings, owner=owner, stack_id=stack_id)
        found = keys.list_keys(iam, user)
    except AccessKeyError:  # ListAccessKeys: the user went meanwhile
        return gone
    except ClientError as err:
        if keys.error_code(err) != "NoSuchEntity":
            raise
        return gone
    for key in found:
        keys.delete(iam, user, key.access_key_id)
    ours = [tag for tag in OUR_TAGS if tag in tags]
    if ours:
        try:
            iam.untag_user(UserName=user, TagKeys=ours)
        except ClientError as err:  # the keys are gone: the user can still be deleted
            logger.warning(
                "could not remove the rotation's tags from the user",
                extra={"user": user, "error": keys.error_code(err)},
            )
    logger.info(
        "deleted the app's access keys",
        extra={"user": user, "access_key_ids": [key.access_key_id for key in found]},
    )
    return Answer(status="SUCCESS", physical_id=user, reason=f"deleted {len(found)} access keys")


def _check_torn_down(
    sm: SecretsManagerClient, settings: Settings, *, owner: str, stack_id: str
) -> None:
    """Refuse unless the owning secret is gone, or no longer rotates and is the stack's.

    Raises
    ------
    NotBoundError
        The secret still has rotation turned on (its readers use the keys), belongs to another
        stack (``aws:cloudformation:stack-id``), or is outside the fleet / not ``SECRET_ARN``.
    """
    try:
        meta = sm.describe_secret(SecretId=owner)
    except ClientError as err:
        if keys.error_code(err) == "ResourceNotFoundException":
            return
        raise
    if meta.get("DeletedDate") is not None:
        return
    state = guard.describe_answer(meta)
    if settings.secret_arn and settings.secret_arn not in (state.arn, owner):
        msg = f"this function is bound to {settings.secret_arn} (SECRET_ARN), not {state.arn}"
        raise NotBoundError(msg)
    fleet.check_secret(state, settings)
    if state.rotation_enabled:
        msg = (
            f"secret {state.arn} still has rotation turned on, so its readers use these keys: "
            "they are left alone. Delete the stack's rotation schedule first, or run aws "
            f"secretsmanager cancel-rotate-secret --secret-id {state.arn} and delete again"
        )
        raise NotBoundError(msg)
    owning_stack = state.tags.get(_STACK_ID_TAG)
    if owning_stack is not None and owning_stack != stack_id:
        msg = (
            f"secret {state.arn} belongs to stack {owning_stack}, not to the requesting stack: "
            "its user's keys are left alone"
        )
        raise NotBoundError(msg)


def _check_user(iam: IAMClient, settings: Settings, user: str) -> bool:
    """Apply the rotation's user rules; return ``False`` when IAM says the user does not exist.

    Fleet mode: the user must be under ``FLEET_USER_PATH`` (one GetUser). One secret: the user
    must be ``SMTP_IAM_USER_NAME`` when it is set (no call; the user is assumed to exist).
    """
    if settings.fleet is not None:
        path = fleet.user_path(iam, user)
        if path is None:
            return False
        fleet.check_path(settings, user, path)
    elif settings.iam_user_name and user != settings.iam_user_name:
        msg = (
            f"this function is bound to IAM user {settings.iam_user_name} "
            f"(SMTP_IAM_USER_NAME) and refuses {user}"
        )
        raise NotBoundError(msg)
    return True


def _check_owner(
    iam: IAMClient, user: str, secret_id: str, *, tags: Mapping[str, str] | None = None
) -> None:
    owner = intents.UserRecords.from_tags(keys.read_tags(iam, user) if tags is None else tags).owner
    if owner is None or owner == secret_id or _name_of(owner) == secret_id:
        return
    msg = (
        f"IAM user {user} is managed by secret {owner} (tag {intents.OWNER_TAG}), not by "
        f"{secret_id}: its keys are left alone"
    )
    raise UserOwnedError(msg)


def _name_of(secret_arn: str) -> str:
    """Return the secret name of an ARN (its last part less the 7-character suffix)."""
    return secret_arn.rsplit(":", 1)[-1][:-7] if secret_arn.startswith("arn:") else secret_arn


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


def respond(request: Request, answer: Answer, *, timeout: float) -> None:
    """PUT the answer to the request's ResponseURL (up to three attempts, each bounded).

    Raises
    ------
    CustomResourceError
        No attempt was answered with success (the message names no URL: it is presigned).
    """
    body = json.dumps(
        {
            "Status": answer.status,
            "Reason": answer.reason or answer.status,
            "PhysicalResourceId": answer.physical_id,
            "StackId": request.stack_id,
            "RequestId": request.request_id,
            "LogicalResourceId": request.logical_id,
            "NoEcho": False,
        }
    ).encode()
    headers = {"Content-Type": "", "Content-Length": str(len(body))}
    failure = ""
    for attempt in range(_PUT_ATTEMPTS):
        if attempt:
            time.sleep(attempt)
        # parse() allowed https, or http to 127.0.0.1, and nothing else (no file: or custom).
        put = urllib.request.Request(request.response_url, data=body, method="PUT", headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(put, timeout=timeout):  # noqa: S310 # nosec B310 - see above
                return
        except urllib.error.HTTPError as err:
            failure = f"HTTP {err.code}"
        except OSError as err:  # URLError, time-outs, connection errors
            failure = type(err).__name__
    msg = f"could not answer CloudFormation at the ResponseURL ({failure}, {_PUT_ATTEMPTS} tries)"
    raise CustomResourceError(msg)
