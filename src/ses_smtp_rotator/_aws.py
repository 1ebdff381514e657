"""The AWS SDK as this library uses it: one client configuration, one region rule, one error name.

boto3 is imported only when a client is built, so that the password functions and ``derive``
run on the standard library alone (boto3 comes with the ``aws`` extra).

The region (:func:`region`): the one given (``--region``), else the secret's when its id is an
ARN, else the SDK's chain (``AWS_DEFAULT_REGION``, the profile's ``region``), else ``AWS_REGION``
(which Lambda sets, and which a shell or a systemd unit often sets alone, but which boto3 does not
read). None of them: :class:`~ses_smtp_rotator.exceptions.RegionNotFoundError`, one line.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any, Final, Literal, overload

from ses_smtp_rotator.endpoints import validate_region
from ses_smtp_rotator.exceptions import RegionNotFoundError

if TYPE_CHECKING:
    from botocore.config import Config
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

# Short network timeouts: a command or an app waiting on AWS should fail in seconds, not minutes.
# botocore's standard retry mode retries throttling and transient errors (its own budget).
CLIENT_OPTIONS: Final[dict[str, Any]] = {
    "connect_timeout": 5,
    "read_timeout": 10,
    "retries": {"mode": "standard"},
}


def config(**overrides: Any) -> Config:  # noqa: ANN401 - botocore's Config takes any option
    """Return the library's botocore configuration, with ``overrides`` applied.

    Examples
    --------
    >>> config(read_timeout=20).read_timeout
    20
    """
    from botocore.config import Config  # noqa: PLC0415 - boto3 is an optional dependency

    return Config(**{**CLIENT_OPTIONS, **overrides})


_ARN_REGION: Final = re.compile(r"arn:[\w-]+:secretsmanager:(?P<region>[a-z0-9-]+):")
# Errors of the caller's own AWS set-up, each with its own advice (never the secret's name).
SETUP_ADVICE: Final = {
    "NoCredentialsError": (
        "no AWS credentials found: set AWS_PROFILE (after `aws configure` or `aws sso login`) or "
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where a role provides them"
    ),
    "PartialCredentialsError": (
        "the AWS credentials are incomplete: set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
        "(and AWS_SESSION_TOKEN for temporary ones), or use a profile"
    ),
    "ExpiredToken": "the AWS credentials have expired: refresh them (`aws sso login`) and retry",
    "ExpiredTokenException": "the AWS credentials have expired: refresh them and retry",
    "UnrecognizedClientException": (
        "AWS does not know these credentials: check AWS_PROFILE or AWS_ACCESS_KEY_ID"
    ),
    "InvalidClientTokenId": "AWS does not know these credentials: check AWS_PROFILE",
    "EndpointConnectionError": (
        "cannot reach AWS: check the network, the region, and AWS_ENDPOINT_URL if it is set"
    ),
    "ConnectTimeoutError": "AWS did not answer in time: check the network and the region",
}


def region_of_arn(secret_id: str | None) -> str | None:
    """Return the region a secret's ARN names, or ``None`` for a name.

    Examples
    --------
    >>> region_of_arn("arn:aws:secretsmanager:eu-west-1:123456789012:secret:smtp-AbCdEf")
    'eu-west-1'
    >>> region_of_arn("smtp") is None
    True
    """
    found = _ARN_REGION.match(secret_id or "")
    return found["region"] if found else None


def region(given: str | None = None, secret_id: str | None = None) -> str:
    """Return the region to call AWS in (see the module docstring for the order).

    Raises
    ------
    InvalidRegionError
        ``given`` (or ``AWS_REGION``) is not a region name.
    RegionNotFoundError
        No region anywhere.
    """
    if given:
        return validate_region(given)
    from_arn = region_of_arn(secret_id)
    if from_arn:
        return from_arn
    import boto3  # noqa: PLC0415 - boto3 is an optional dependency

    from_sdk = boto3.session.Session().region_name
    if from_sdk:
        return from_sdk
    from_env = os.environ.get("AWS_REGION", "").strip()
    if from_env:
        return validate_region(from_env)
    msg = (
        "no AWS region: give --region, or the secret's ARN as --secret-id, or set AWS_REGION "
        "(or AWS_DEFAULT_REGION, or a region in your AWS profile)"
    )
    raise RegionNotFoundError(msg)


def advice(err: BaseException, default: str) -> str:
    """Return what to do about ``err``: its own advice for a set-up problem, else ``default``."""
    return SETUP_ADVICE.get(error_code(err), default)


@overload
def client(
    service: Literal["secretsmanager"], *, region: str | None = None
) -> SecretsManagerClient: ...


@overload
def client(service: Literal["iam"], *, region: str | None = None) -> IAMClient: ...
def client(
    service: Literal["secretsmanager", "iam"], *, region: str | None = None
) -> SecretsManagerClient | IAMClient:
    """Return a client for ``service`` from the default AWS chain, with :func:`config`.

    ``region`` overrides the chain's region; without it the chain's, else ``AWS_REGION``.

    Raises
    ------
    RegionNotFoundError
        No region given and none found.
    """
    import boto3  # noqa: PLC0415 - boto3 is an optional dependency

    return boto3.client(service, region_name=_region(region), config=config())


_region = region  # `client`'s parameter has the function's name


def secrets_client(given: str | None, secret_id: str | None) -> SecretsManagerClient:
    """Return a Secrets Manager client in :func:`region`'s region for ``secret_id``."""
    return client("secretsmanager", region=region(given, secret_id))


def error_code(err: BaseException | None) -> str:
    """Name what went wrong in an AWS call: the service's error code, else the exception's type.

    Only the code is kept, never the message, which may quote a request parameter.

    Examples
    --------
    >>> error_code(TimeoutError())
    'TimeoutError'
    """
    if err is None:
        return "unknown error"
    response = getattr(err, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return str(code) if code else type(err).__name__
