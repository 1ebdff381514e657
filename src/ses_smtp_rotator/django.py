"""A Django email backend that reads the SMTP credentials from the rotated secret.

Install the extra (``pip install ses-smtp-rotator[django]``) and set::

    EMAIL_BACKEND = "ses_smtp_rotator.django.EmailBackend"
    SES_SMTP_SECRET_ID = "ses-smtp-rotator"   # name or ARN of the rotated secret
    SES_SMTP_SECRET_MAX_AGE = 300                 # optional: seconds the secret is cached
    SES_SMTP_STALE_IF_ERROR = 3600                # optional: seconds to keep sending on the last
                                                  # credentials while the secret cannot be read
    EMAIL_TIMEOUT = 10                            # optional: seconds per network operation

Host, port, TLS mode, user name and password all come from the secret (``EMAIL_HOST``,
``EMAIL_PORT``, ``EMAIL_HOST_USER``, ``EMAIL_HOST_PASSWORD`` and ``EMAIL_USE_TLS`` are not used).
Each backend instance keeps one connection while Django holds it open (``get_connection()``
used as a context manager, or a mass mail); the secret's cache is shared by the whole process, so
``send_mail`` costs one ``GetSecretValue`` per cache period, not one per message. Sending rides
out rotations as :class:`~ses_smtp_rotator.client.SmtpSender` does, and outages of Secrets Manager
for up to ``SES_SMTP_STALE_IF_ERROR`` seconds (the last credentials read, shared by the process).
"""

from __future__ import annotations

import smtplib
import threading
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import sanitize_address

from ses_smtp_rotator.client import (
    DEFAULT_MAX_AGE,
    DEFAULT_STALE_IF_ERROR,
    DEFAULT_TIMEOUT,
    SmtpSender,
)
from ses_smtp_rotator.credentials import stale_seconds
from ses_smtp_rotator.exceptions import SesSmtpCredentialsError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import timedelta

    from django.core.mail import EmailMessage


class EmailBackend(BaseEmailBackend):
    """Send Django mail through Amazon SES SMTP with the credentials of a rotated secret.

    Parameters
    ----------
    fail_silently
        Swallow sending errors (Django's meaning); configuration errors are always raised.
    secret_id, max_age, timeout, stale_if_error
        Override ``SES_SMTP_SECRET_ID``, ``SES_SMTP_SECRET_MAX_AGE``, ``EMAIL_TIMEOUT`` and
        ``SES_SMTP_STALE_IF_ERROR``.

    Raises
    ------
    django.core.exceptions.ImproperlyConfigured
        ``SES_SMTP_SECRET_ID`` is not set, or ``SES_SMTP_SECRET_MAX_AGE`` or
        ``SES_SMTP_STALE_IF_ERROR`` is not a number of seconds.

    Examples
    --------
    >>> from django.core.mail import send_mail  # doctest: +SKIP
    >>> send_mail("Hi", "Body", "app@example.com", ["user@example.com"])  # doctest: +SKIP
    1
    """

    def __init__(
        self,
        fail_silently: bool = False,  # noqa: FBT001, FBT002 - Django's positional signature
        *,
        secret_id: str | None = None,
        max_age: int | None = None,
        timeout: float | None = None,
        stale_if_error: float | timedelta | None = None,
        **kwargs: Any,  # noqa: ANN401 - Django passes unknown options through
    ) -> None:
        super().__init__(fail_silently=fail_silently, **kwargs)
        secret_id = secret_id or getattr(settings, "SES_SMTP_SECRET_ID", None)
        if not secret_id or not isinstance(secret_id, str):
            msg = "set SES_SMTP_SECRET_ID to the name or ARN of the rotated SES SMTP secret"
            raise ImproperlyConfigured(msg)
        self.secret_id: str = secret_id
        self.max_age = _max_age(max_age)
        self.stale_if_error = _stale_if_error(stale_if_error)
        self.timeout = float(timeout or getattr(settings, "EMAIL_TIMEOUT", None) or DEFAULT_TIMEOUT)
        self._sender: SmtpSender | None = None
        self._lock = threading.RLock()

    def open(self) -> bool:
        """Prepare the connection; return whether this call opened it (Django's contract)."""
        if self._sender is not None:
            return False
        self._sender = SmtpSender(
            self.secret_id,
            max_age=self.max_age,
            timeout=self.timeout,
            stale_if_error=self.stale_if_error,
        )
        return True

    def close(self) -> None:
        """Close the connection, if open."""
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.close()

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Send the messages; return how many were sent."""
        if not email_messages:
            return 0
        with self._lock:
            opened = self.open()
            try:
                return sum(self._send(message) for message in email_messages)
            finally:
                if opened:
                    self.close()

    def _send(self, message: EmailMessage) -> bool:
        recipients = message.recipients()
        if not recipients or self._sender is None:
            return False
        encoding = message.encoding or settings.DEFAULT_CHARSET
        try:
            self._sender.send(
                message.message(),
                from_addr=sanitize_address(message.from_email, encoding),
                to_addrs=[sanitize_address(address, encoding) for address in recipients],
            )
        except (SesSmtpCredentialsError, smtplib.SMTPException, OSError):
            if not self.fail_silently:
                raise
            return False
        return True


def _max_age(explicit: int | None) -> int:
    raw = explicit if explicit is not None else getattr(settings, "SES_SMTP_SECRET_MAX_AGE", None)
    if raw is None:
        return DEFAULT_MAX_AGE
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = -1
    if value < 0:
        msg = "SES_SMTP_SECRET_MAX_AGE must be a number of seconds (0 or more), such as 300"
        raise ImproperlyConfigured(msg)
    return value


def _stale_if_error(explicit: float | timedelta | None) -> float:
    raw = explicit if explicit is not None else getattr(settings, "SES_SMTP_STALE_IF_ERROR", None)
    if raw is None:
        return DEFAULT_STALE_IF_ERROR
    try:
        return stale_seconds(float(raw) if isinstance(raw, str) else raw)
    except ValueError:
        msg = "SES_SMTP_STALE_IF_ERROR must be a number of seconds (0 or more), such as 3600"
        raise ImproperlyConfigured(msg) from None
