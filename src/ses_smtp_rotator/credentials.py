"""Read the SMTP credentials from the secret: the one reader of apps and commands.

Apps call :func:`get_smtp_credentials`: the AWSCURRENT version read through Powertools' parameters
utility (``SecretsProvider``, which works outside Lambda), cached for ``max_age`` seconds, with one
provider per boto3 client so that every caller in a process shares one cache. One-shot commands
(``check``, ``export``) call :func:`read_secret`: one ``GetSecretValue``, no cache, any staging
label, boto3 only. Both parse the value with :func:`~ses_smtp_rotator.secret.parse_secret` and fail
the same way: :class:`SecretUnavailableError` (with AWS's error code), :class:`InvalidSecretError`
(a field, never a value) or :class:`CredentialsNotReadyError` (a bootstrap value). Public names are
re-exported by :mod:`ses_smtp_rotator.client`.

Stale-if-error: once the cache has expired, a read that fails (throttling, an outage, KMS, a value
that does not parse) does not fail the caller while the last credentials read are at hand: they are
returned for up to ``stale_if_error`` seconds from the first failed read, with one warning, and the
secret is read again at most every :data:`STALE_RETRY_SECONDS` (or ``max_age``, if shorter) in
the meantime. After that, the read's error is raised. A ``force_fetch`` (after a ``535``) never
returns stale credentials: they were just refused.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Final

from ses_smtp_rotator import _aws
from ses_smtp_rotator._smtp_credentials import SmtpCredentials, read_secret, unavailable
from ses_smtp_rotator.exceptions import (
    CredentialsNotReadyError,
    InvalidSecretError,
    SecretUnavailableError,
)
from ses_smtp_rotator.sdk_logging import quiet_sdk_loggers
from ses_smtp_rotator.secret import parse_secret

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from mypy_boto3_secretsmanager import SecretsManagerClient

# SmtpCredentials and read_secret are re-exported: the apps' reader's public names live here.
__all__ = [
    "DEFAULT_MAX_AGE",
    "DEFAULT_STALE_IF_ERROR",
    "SmtpCredentials",
    "clear_cache",
    "get_smtp_credentials",
    "read_secret",
    "stale_seconds",
]

DEFAULT_MAX_AGE: Final = 300
DEFAULT_STALE_IF_ERROR: Final = 3600.0
# While serving stale credentials, the secret is read again at most this often (or every max_age
# seconds, if shorter): each failed read costs the SDK's retries, and hammering a throttled or
# failing service makes it worse.
STALE_RETRY_SECONDS: Final = 30.0

_log = logging.getLogger(__name__)
_lock = threading.Lock()
# id(client) -> (client, provider). The client is kept so its id cannot be reused; None is the
# default-chain client. Pass a long-lived client, as boto3 recommends: each one gets a cache.
_providers: dict[int | None, tuple[object, SecretsProvider]] = {}
# The errors of a read that stale-if-error rides out.
_READ_ERRORS: Final = (SecretUnavailableError, InvalidSecretError, CredentialsNotReadyError)


@dataclass
class _LastGood:
    """The last credentials read for one (client, secret), and the failed reads since."""

    credentials: SmtpCredentials
    failing_since: float | None = None
    retry_at: float = 0.0


# (id(client) or None, secret id) -> the last credentials read; guarded by _lock.
_last_good: dict[tuple[int | None, str], _LastGood] = {}


def stale_seconds(value: float | timedelta) -> float:
    """Return a stale-if-error bound in seconds (a number of seconds or a ``timedelta``).

    Raises
    ------
    ValueError
        The bound is negative or not a finite number.

    Examples
    --------
    >>> stale_seconds(timedelta(minutes=5))
    300.0
    """
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not math.isfinite(seconds)
        or seconds < 0
    ):
        msg = "stale_if_error must be a number of seconds (0 or more) or a timedelta, such as 3600"
        raise ValueError(msg)
    return float(seconds)


def _provider(client: SecretsManagerClient | None) -> SecretsProvider:
    # Powertools is the `client` extra: imported only by the apps' cached reader.
    from aws_lambda_powertools.utilities.parameters import SecretsProvider  # noqa: PLC0415

    key = None if client is None else id(client)
    with _lock:
        if key not in _providers:
            made = client if client is not None else _aws.client("secretsmanager")
            _providers[key] = (made, SecretsProvider(boto3_client=made))
        return _providers[key][1]


def clear_cache() -> None:
    """Forget every cached secret and the default client (tests, or after changing AWS settings).

    Examples
    --------
    >>> clear_cache()
    """
    with _lock:
        _providers.clear()
        _last_good.clear()


def get_smtp_credentials(
    secret_id: str,
    *,
    max_age: int = DEFAULT_MAX_AGE,
    client: SecretsManagerClient | None = None,
    force_fetch: bool = False,
    stale_if_error: float | timedelta = DEFAULT_STALE_IF_ERROR,
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
        Read the secret now, bypassing (and refreshing) the cache: after a ``535``. Never
        answered with stale credentials.
    stale_if_error
        Seconds (or a ``timedelta``) for which the last credentials read are returned, with one
        warning, while reading the secret fails; from the first failed read. ``0`` turns it off.

    Returns
    -------
    SmtpCredentials
        Host, port, user name, password, region and TLS mode.

    Raises
    ------
    ValueError
        ``stale_if_error`` is negative.
    SecretUnavailableError
        Secrets Manager could not be read (the message names the secret and AWS's error code),
        and no credentials within ``stale_if_error`` are at hand. Same for the two below.
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
    stale = stale_seconds(stale_if_error)
    key = (None if client is None else id(client), secret_id)
    now = time.monotonic()
    with _lock:
        last = _last_good.get(key)
        if (
            last is not None
            and last.failing_since is not None
            and not force_fetch
            and now < last.retry_at
            and now - last.failing_since <= stale
        ):
            return last.credentials  # a read failed moments ago: do not hammer the service
    try:
        credentials = _read(secret_id, max_age=max_age, client=client, force_fetch=force_fetch)
    except _READ_ERRORS as err:
        with _lock:
            last = _last_good.get(key)
            if force_fetch or last is None or stale <= 0:
                raise
            first_failure = last.failing_since is None
            failing_since = now if last.failing_since is None else last.failing_since
            last.failing_since = failing_since
            if now - failing_since > stale:
                raise
            last.retry_at = now + min(STALE_RETRY_SECONDS, float(max_age))
            stale_credentials = last.credentials
        if first_failure:
            # One warning per outage, outside the lock (a log handler may send mail through this
            # very module); the error's text never holds a secret.
            _log.warning(
                "stale-if-error: %s; sending with the last credentials read (access key %s) "
                "for up to %.0f s while the secret cannot be read",
                err,
                stale_credentials.username,
                stale,
            )
        return stale_credentials
    with _lock:
        _last_good[key] = _LastGood(credentials)
    return credentials


def _read(
    secret_id: str, *, max_age: int, client: SecretsManagerClient | None, force_fetch: bool
) -> SmtpCredentials:
    from aws_lambda_powertools.utilities.parameters import GetParameterError  # noqa: PLC0415

    provider = _provider(client)
    # At DEBUG, botocore would log GetSecretValue's answer (the whole secret): never below WARNING.
    quiet_sdk_loggers()
    try:
        # AWSCURRENT is GetSecretValue's default; naming it keeps emulators that track a
        # "default version" apart from the label (moto) honest too.
        value = provider.get(
            secret_id, max_age=max_age, force_fetch=force_fetch, VersionStage="AWSCURRENT"
        )
    except GetParameterError as err:
        # Powertools wraps the botocore error: name the error it wraps.
        cause = err.__cause__ or err.__context__
        raise SecretUnavailableError(unavailable(secret_id, cause)) from None
    if not isinstance(value, str | bytes):  # pragma: no cover - no transform is asked for
        value = ""
    secret = parse_secret(
        value, default_region=provider.client.meta.region_name, secret_id=secret_id
    )
    return SmtpCredentials.of(secret, secret_id)
