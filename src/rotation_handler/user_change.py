"""The custom resource ``Custom::SmtpUserChange``: a stack update that changes the user rotates.

``template.yaml`` writes ``{"iam_user_name": <user>}`` as the secret's value. When a stack update
changes ``IamUserName``, CloudFormation writes that value over ``AWSCURRENT`` (no credentials in
it), and no rotation follows on its own. The stack therefore also declares this resource, whose
one property is the user name and which CloudFormation updates after the secret, the function's
variables and its role name the new user:

- Update with another ``UserName`` than before: start a rotation (``RotateSecret``) of the
  function's own secret, ``SECRET_ARN`` (:func:`rotation_handler.gate.own_secret`), never of a
  secret the request names. A rotation already in progress counts as started.
- Update with the same user, Create, Delete: nothing to do.

Anyone who may invoke the function can send such a request: its fields only decide whether to
ask for a rotation, and the worst a forged one can do is rotate the function's own secret, which
every rotation's tests keep safe for its readers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Protocol

from botocore.exceptions import ClientError

from rotation_handler import gate
from rotation_handler.cloudformation import Answer, Request
from rotation_handler.exceptions import error_code
from rotation_handler.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from rotation_handler.settings import Settings

RESOURCE_TYPE: Final = "Custom::SmtpUserChange"
# The resource's physical id never changes, so CloudFormation never replaces it.
PHYSICAL_ID: Final = "rotate-on-user-change"
_PENDING: Final = "AWSPENDING"
_CURRENT: Final = "AWSCURRENT"


class Runtime(Protocol):
    """What the function built at its cold start (settings and the Secrets Manager client)."""

    @property
    def settings(self) -> Settings:
        """The function's settings."""

    @property
    def sm(self) -> SecretsManagerClient:
        """The Secrets Manager client."""


def handle(request: Request, rt: Runtime) -> Answer:
    """Start a rotation of ``SECRET_ARN`` when an Update changed ``UserName``; else do nothing.

    Raises
    ------
    NotBoundError
        The function is not a single-secret function (no ``SECRET_ARN``, or a fleet).
    botocore.exceptions.ClientError
        Secrets Manager refused ``RotateSecret`` for another reason than a rotation in progress.
    """
    physical_id = request.physical_id or PHYSICAL_ID
    if request.request_type != "Update":
        return Answer(status="SUCCESS", physical_id=physical_id, reason="nothing to do")
    new, old = request.properties.get("UserName"), request.old_properties.get("UserName")
    if new == old:
        return Answer(status="SUCCESS", physical_id=physical_id, reason="the user did not change")
    secret_arn = gate.own_secret(rt.settings, new)
    if secret_arn is None:
        # The function is not (or no longer) bound to the new user: a rotation could only fail.
        logger.warning("user change not matching SMTP_IAM_USER_NAME: no rotation started")
        reason = "the function is not bound to the new user (SMTP_IAM_USER_NAME): no rotation"
        return Answer(status="SUCCESS", physical_id=physical_id, reason=reason)
    started = _rotate(rt, secret_arn)
    logger.info("rotation for a change of user", extra={"started": started})
    reason = "rotation started" if started else "a rotation was already in progress"
    return Answer(status="SUCCESS", physical_id=physical_id, reason=reason)


def _rotate(rt: Runtime, secret_arn: str) -> bool:
    """Ask Secrets Manager to rotate; ``False`` when it refused because one is in progress."""
    try:
        rt.sm.rotate_secret(SecretId=secret_arn)
    except ClientError as err:
        if error_code(err) != "InvalidRequestException" or not _in_progress(rt, secret_arn):
            raise
        return False
    return True


def _in_progress(rt: Runtime, secret_arn: str) -> bool:
    """Whether AWSPENDING is on a version other than AWSCURRENT's (Secrets Manager's own test)."""
    state = gate.admit_secret(rt.sm, secret_arn, rt.settings)
    pending = state.version_with(_PENDING)
    return pending is not None and pending != state.version_with(_CURRENT)
