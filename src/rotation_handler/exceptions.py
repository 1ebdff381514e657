"""Errors the rotation function raises; Secrets Manager records them as the step's failure.

Each message names the cause and what to do; none contains a secret key, a password, a secret
value or the RotationToken.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from botocore.exceptions import ClientError


def error_code(err: ClientError) -> str:
    """Return the AWS error code of a ``ClientError`` (``""`` when the answer had none)."""
    return str(err.response.get("Error", {}).get("Code", ""))


class RotationError(Exception):
    """Base class of every error the rotation function raises on purpose."""


class UnknownStepError(RotationError):
    """The event's ``Step`` is not one of the four rotation steps."""


class BadEventError(RotationError):
    """The event lacks ``SecretId`` or ``ClientRequestToken``."""


class NotBoundError(RotationError):
    """The secret or the IAM user is not the one this function is configured for."""


class NotInFleetError(NotBoundError):
    """Fleet mode: the secret lacks the fleet tag, or its IAM user is outside the fleet's path."""


class HiddenUserError(NotInFleetError):
    """Fleet mode: IAM refused to show the user (it is outside the path, or does not exist)."""


class UserOwnedError(NotBoundError):
    """The IAM user's keys are managed by another secret; the message names it."""


class CrossAccountError(NotBoundError):
    """The secret is in another account and the function cannot act there.

    ``CROSS_ACCOUNT_ROLE_NAME`` is unset, or the member account's role cannot be assumed.
    """


class RotationNotEnabledError(RotationError):
    """Rotation is not enabled on the secret."""


class StagingError(RotationError):
    """The token is not a version of the secret, or not the AWSPENDING one."""


class SecretValueError(RotationError):
    """A version of the secret cannot be used (bad JSON, missing field, missing value)."""


class ForeignKeyError(RotationError):
    """IAM's two-key limit is held by a key this function must not delete."""


class AccessKeyError(RotationError):
    """An IAM access key is missing, or IAM refused an operation on it."""


class SmtpTestError(RotationError):
    """The pending credentials did not log in to the SMTP endpoint."""


class CustomResourceError(RotationError):
    """A CloudFormation custom resource request could not be answered (no usable ResponseURL)."""
