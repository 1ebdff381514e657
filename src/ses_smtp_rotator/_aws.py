"""The AWS SDK as this library uses it: one client configuration, one way to name an error.

boto3 is imported only when a client is built, so that the password functions and ``derive``
run on the standard library alone (boto3 comes with the ``aws`` extra).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Literal, overload

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

    ``region`` overrides the chain's region (``AWS_REGION``, the profile's).
    """
    import boto3  # noqa: PLC0415 - boto3 is an optional dependency

    return boto3.client(service, region_name=region, config=config())


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
