"""Read the SMTP credentials from the secret's AWSCURRENT version, cached (app side).

The secret is read through Powertools' parameters utility (``SecretsProvider``, which works outside
Lambda), cached for ``max_age`` seconds, with one provider per boto3 client so that every caller in
a process shares one cache. Public names are re-exported by :mod:`ses_smtp_rotator.client`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from aws_lambda_powertools.utilities.parameters import GetParameterError, SecretsProvider

from ses_smtp_rotator.exceptions import (
    CredentialsNotReadyError,
    SecretUnavailableError,
)
from ses_smtp_rotator.secret import parse_secret

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from ses_smtp_rotator.endpoints import TlsMode

DEFAULT_MAX_AGE: Final = 300

_lock = threading.Lock()
# id(client) -> (client, provider). The client is kept so its id cannot be reused; None is the
# default-chain client. Pass a long-lived client, as boto3 recommends: each one gets a cache.
_providers: dict[int | None, tuple[object, SecretsProvider]] = {}


@dataclass(frozen=True, kw_only=True)
class SmtpCredentials:
    """Where to send and how to log in, read from the secret's AWSCURRENT version.

    ``repr`` and ``str`` never show the password.
    """

    host: str
    port: int
    username: str
    password: str
    region: str
    tls: TlsMode

    def __repr__(self) -> str:
        """Show the endpoint and the access key id, never the password (repr reaches logs)."""
        return (
            f"SmtpCredentials(host={self.host!r}, port={self.port!r}, username={self.username!r}, "
            f"region={self.region!r}, tls={self.tls.value!r}, password=***)"
        )

    __str__ = __repr__


def _provider(client: SecretsManagerClient | None) -> SecretsProvider:
    key = None if client is None else id(client)
    with _lock:
        if key not in _providers:
            made = client if client is not None else _default_client()
            _providers[key] = (made, SecretsProvider(boto3_client=made))
        return _providers[key][1]


def _default_client() -> SecretsManagerClient:
    import boto3  # noqa: PLC0415 - only the fallback needs a client of its own
    from botocore.config import Config  # noqa: PLC0415 - same

    config = Config(connect_timeout=5, read_timeout=10, retries={"mode": "standard"})
    return boto3.client("secretsmanager", config=config)


def clear_cache() -> None:
    """Forget every cached secret and the default client (tests, or after changing AWS settings).

    Examples
    --------
    >>> clear_cache()
    """
    with _lock:
        _providers.clear()


def get_smtp_credentials(
    secret_id: str,
    *,
    max_age: int = DEFAULT_MAX_AGE,
    client: SecretsManagerClient | None = None,
    force_fetch: bool = False,
) -> SmtpCredentials:
    """Return the SMTP credentials of the secret's AWSCURRENT version, cached for ``max_age`` s.

    Parameters
    ----------
    secret_id
        Name or ARN of the rotated secret.
    max_age
        Seconds a value read from Secrets Manager is reused (one ``GetSecretValue`` per period).
    client
        A Secrets Manager client; default: one built once from the default AWS chain.
    force_fetch
        Read the secret now, bypassing (and refreshing) the cache: after a ``535``.

    Returns
    -------
    SmtpCredentials
        Host, port, user name, password, region and TLS mode.

    Raises
    ------
    SecretUnavailableError
        Secrets Manager could not be read (the message names the secret and AWS's error code).
    InvalidSecretError
        The value does not follow the schema; the message names the secret and the field.
    CredentialsNotReadyError
        The secret holds its bootstrap value: the first rotation has not completed.

    Examples
    --------
    >>> creds = get_smtp_credentials(os.environ["SES_SMTP_SECRET_ID"])  # doctest: +SKIP
    >>> creds.host, creds.port  # doctest: +SKIP
    ('email-smtp.eu-west-1.amazonaws.com', 587)
    """
    provider = _provider(client)
    try:
        # AWSCURRENT is GetSecretValue's default; naming it keeps emulators that track a
        # "default version" apart from the label (moto) honest too.
        value = provider.get(
            secret_id, max_age=max_age, force_fetch=force_fetch, VersionStage="AWSCURRENT"
        )
    except GetParameterError as err:
        raise SecretUnavailableError(_read_failure(secret_id, err)) from None
    if not isinstance(value, str | bytes):  # pragma: no cover - no transform is asked for
        value = ""
    secret = parse_secret(
        value, default_region=provider.client.meta.region_name, secret_id=secret_id
    )
    if secret.access_key_id is None or secret.password is None:
        msg = (
            f"secret {secret_id} holds no SMTP credentials yet (its bootstrap value): the first "
            "rotation has not completed; rotate it (aws secretsmanager rotate-secret) and retry"
        )
        raise CredentialsNotReadyError(msg)
    return SmtpCredentials(
        host=secret.host,
        port=secret.port,
        username=secret.access_key_id,
        password=secret.password,
        region=secret.region,
        tls=secret.tls,
    )


def _read_failure(secret_id: str, err: GetParameterError) -> str:
    # Powertools wraps the botocore error; keep only its error code, not its text.
    cause = err.__cause__ or err.__context__
    response = getattr(cause, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    reason = code or (type(cause).__name__ if cause is not None else "unknown error")
    return (
        f"cannot read secret {secret_id} ({reason}): check its name, the region, and that this "
        "role may call secretsmanager:GetSecretValue on it (and kms:Decrypt on its key)"
    )
