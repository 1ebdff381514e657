"""App side: read the SMTP credentials from the secret and send mail across rotations.

:func:`get_smtp_credentials` returns the secret's credentials, cached through Powertools'
parameters utility. :class:`SmtpSender` keeps one authenticated SMTP connection open, moves to new
credentials as soon as the cache shows them, and after a ``535`` reads the secret once more,
bypassing the cache, before it gives up: that is the window between a rotation and the cache's
expiry, where an app still holds the old (now deactivated) key. When the secret cannot be read
once the cache has expired (throttling, an outage, KMS), sending goes on with the last credentials
read for ``stale_if_error`` seconds (one hour by default), with one warning.
"""

from __future__ import annotations

import smtplib
import threading
from typing import TYPE_CHECKING, Final

from ses_smtp_rotator import smtp
from ses_smtp_rotator.credentials import (
    DEFAULT_MAX_AGE,
    DEFAULT_STALE_IF_ERROR,
    SmtpCredentials,
    clear_cache,
    get_smtp_credentials,
    stale_seconds,
)
from ses_smtp_rotator.diagnose import diagnose
from ses_smtp_rotator.exceptions import CredentialsRejectedError

if TYPE_CHECKING:
    import ssl
    from datetime import timedelta
    from email.message import Message
    from types import TracebackType
    from typing import Self

    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = [
    "DEFAULT_MAX_AGE",
    "DEFAULT_STALE_IF_ERROR",
    "DEFAULT_TIMEOUT",
    "SmtpCredentials",
    "SmtpSender",
    "clear_cache",
    "get_smtp_credentials",
]

DEFAULT_TIMEOUT: Final = 10.0
_CODE_INVALID_CREDENTIALS: Final = 535
_CODE_UNAVAILABLE: Final = 421


class SmtpSender:
    """Send mail with the secret's credentials, surviving rotations.

    One SMTP connection is opened on the first send and kept open: an authenticated session
    survives the old key's deactivation. Before each send the (cached) credentials are compared
    with the ones the connection logged in with; when a rotation shows up, the connection is
    replaced. A connection the server dropped is reopened once, transparently. A ``535`` at login
    reads the secret again, bypassing the cache, and logs in once more if it changed. When the
    secret cannot be read after the cache expired, the last credentials read are used for up to
    ``stale_if_error`` seconds (one warning), then the read's error is raised. Thread-safe: sends
    are serialised on the one connection.

    Parameters
    ----------
    secret_id
        Name or ARN of the rotated secret.
    max_age
        Seconds the secret is cached (see :func:`get_smtp_credentials`).
    client
        A Secrets Manager client; default: the default AWS chain.
    timeout
        Seconds allowed for each network operation.
    ssl_context
        Context verifying the server; default: the system's (certificate and host name checked).
    stale_if_error
        Seconds (or a ``timedelta``) the last credentials read keep being used while reading the
        secret fails, from the first failed read (see :func:`get_smtp_credentials`); ``0``: never.

    Raises
    ------
    ValueError
        ``stale_if_error`` is negative.

    Examples
    --------
    >>> with SmtpSender("ses-smtp-rotator") as sender:  # doctest: +SKIP
    ...     sender.send(message)
    """

    def __init__(  # noqa: PLR0913 - keyword-only options after the secret
        self,
        secret_id: str,
        *,
        max_age: int = DEFAULT_MAX_AGE,
        client: SecretsManagerClient | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
        stale_if_error: float | timedelta = DEFAULT_STALE_IF_ERROR,
    ) -> None:
        self.secret_id = secret_id
        self.max_age = max_age
        self.stale_if_error = stale_seconds(stale_if_error)
        self.timeout = timeout
        self._client = client
        self._ssl_context = ssl_context
        self._lock = threading.Lock()
        self._smtp: smtplib.SMTP | None = None
        self._logged_in_as: SmtpCredentials | None = None

    def __repr__(self) -> str:
        """Name the secret and whether a connection is open."""
        state = "open" if self._smtp is not None else "closed"
        return f"SmtpSender(secret_id={self.secret_id!r}, {state})"

    def __enter__(self) -> Self:
        """Return the sender; the connection opens on the first send."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the connection."""
        self.close()

    def send(
        self,
        message: Message,
        *,
        from_addr: str | None = None,
        to_addrs: list[str] | None = None,
    ) -> None:
        """Send one message (envelope from its headers unless ``from_addr``/``to_addrs``).

        Raises
        ------
        CredentialsRejectedError
            The secret's current credentials were refused (535); the message says the likely
            cause.
        SecretUnavailableError, InvalidSecretError, CredentialsNotReadyError
            See :func:`get_smtp_credentials` (after ``stale_if_error`` has run out, or after a
            ``535`` when the secret cannot be read again).
        smtplib.SMTPException, OSError
            Any other SMTP or network failure (a refused recipient, an unreachable host).
        """
        with self._lock:
            reused = self._ensure_connection()
            try:
                self._connection().send_message(message, from_addr, to_addrs)
            except (
                smtplib.SMTPServerDisconnected,
                ConnectionError,
                smtplib.SMTPResponseException,
            ) as err:
                if not _is_dropped(err):
                    raise
                self._close()
                if not reused:
                    raise
                # The server closed an idle connection under us: reopen once and send again.
                self._close()
                self._ensure_connection()
                self._connection().send_message(message, from_addr, to_addrs)

    def close(self) -> None:
        """Say QUIT and close the connection, if one is open."""
        with self._lock:
            self._close()

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:  # pragma: no cover - _ensure_connection always opens one
            msg = "no SMTP connection"
            raise smtplib.SMTPServerDisconnected(msg)
        return self._smtp

    def _credentials(self, *, force_fetch: bool = False) -> SmtpCredentials:
        return get_smtp_credentials(
            self.secret_id,
            max_age=self.max_age,
            client=self._client,
            force_fetch=force_fetch,
            stale_if_error=self.stale_if_error,
        )

    def _ensure_connection(self) -> bool:
        """Open (or replace) the connection for the current credentials; True if reused."""
        credentials = self._credentials()
        if self._smtp is not None and credentials == self._logged_in_as:
            return True
        self._close()
        try:
            self._open(credentials)
        except smtplib.SMTPAuthenticationError as err:
            if err.smtp_code != _CODE_INVALID_CREDENTIALS:
                raise
            # The cached credentials may predate a rotation: read the secret again, once.
            fresh = self._credentials(force_fetch=True)
            if fresh == credentials:
                raise self._rejected(fresh) from None
            try:
                self._open(fresh)
            except smtplib.SMTPAuthenticationError as again:
                if again.smtp_code != _CODE_INVALID_CREDENTIALS:
                    raise
                raise self._rejected(fresh) from None
        return False

    def _open(self, credentials: SmtpCredentials) -> None:
        connection = smtp.connect(
            credentials.host,
            credentials.port,
            tls=credentials.tls,
            timeout=self.timeout,
            ssl_context=self._ssl_context,
        )
        try:
            smtp.authenticate(
                connection, credentials.username, credentials.password, where=credentials.host
            )
        except BaseException:
            smtp.quit_quietly(connection)
            raise
        self._smtp, self._logged_in_as = connection, credentials

    def _rejected(self, credentials: SmtpCredentials) -> CredentialsRejectedError:
        found = diagnose(
            host=credentials.host,
            username=credentials.username,
            password=credentials.password,
            region=credentials.region,
        )
        msg = (
            f"{credentials.host}:{credentials.port} refused the credentials of "
            f"{credentials.username} (535) read just now from secret {self.secret_id}; likely "
            f"cause ({found.cause}): {found.message}"
        )
        return CredentialsRejectedError(msg)

    def _close(self) -> None:
        if self._smtp is not None:
            smtp.quit_quietly(self._smtp)
        self._smtp, self._logged_in_as = None, None


def _is_dropped(err: OSError) -> bool:
    if isinstance(err, smtplib.SMTPResponseException):
        return err.smtp_code == _CODE_UNAVAILABLE
    return True
