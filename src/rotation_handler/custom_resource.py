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

from rotation_handler import gate, keys
from rotation_handler.exceptions import (
    AccessKeyError,
    BadEventError,
    CustomResourceError,
    NotBoundError,
    NotInFleetError,
    RotationError,
    StagingError,
)
from rotation_handler.observability import logger
from ses_smtp_rotator.contract import FUNCTION_TAGS

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
OUR_TAGS: Final = FUNCTION_TAGS
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

    @property
    def cloudformation(self) -> gate.StackReader:
        """The CloudFormation client (asked whether a stack is deleting the resource)."""


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
        return handle(request, rt)
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


def handle(request: Request, rt: Runtime) -> Answer:
    """Validate (Create, Update) or clean up (Delete) the app's IAM user.

    Raises
    ------
    BadEventError
        Not a ``Custom::SmtpUserKeys`` request, or ``UserName``/``SecretId`` missing.
    NotBoundError
        The gate refuses the secret, the user or their binding (fleet mode:
        :class:`~rotation_handler.exceptions.NotInFleetError`), or (Delete) CloudFormation does
        not confirm the teardown.
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
    if settings.iam_user_name and user != settings.iam_user_name:
        msg = (
            f"this function is bound to IAM user {settings.iam_user_name} "
            f"(SMTP_IAM_USER_NAME) and refuses {user}"
        )
        raise NotBoundError(msg)
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
    teardown = gate.Teardown(
        stack_id=request.stack_id, logical_id=request.logical_id, user=user, secret_arn=bound
    )
    gate.check_teardown(rt.cloudformation, teardown)
    _check_rotation_off(rt.sm, settings, secret_arn=bound)
    try:
        found = keys.list_keys(iam, user)
    except AccessKeyError:  # ListAccessKeys: the user went meanwhile
        return gone
    for key in found:
        keys.delete(iam, user, key.access_key_id)
    ours = [tag for tag in OUR_TAGS if tag in found_user.tags]
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


def _check_rotation_off(sm: SecretsManagerClient, settings: Settings, *, secret_arn: str) -> None:
    """Refuse while the bound secret still rotates: its readers use the keys.

    Raises
    ------
    NotBoundError
        The secret still has rotation turned on, or the gate refuses it.
    """
    try:
        state = gate.admit_secret(sm, secret_arn, settings)
    except StagingError:  # gone: nothing reads the keys through it any more
        return
    if state.deleted or not state.rotation_enabled:
        return
    msg = (
        f"secret {state.arn} still has rotation turned on, so its readers use these keys: "
        "they are left alone. Delete the stack's rotation schedule first, or run aws "
        f"secretsmanager cancel-rotate-secret --secret-id {state.arn} and delete again"
    )
    raise NotBoundError(msg)


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
