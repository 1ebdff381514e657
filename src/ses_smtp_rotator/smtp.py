"""SMTP login probe: connect with TLS, ``AUTH``, ``QUIT``, and name what went wrong.

Only the standard library (:mod:`smtplib`, :mod:`ssl`). Credentials are never sent before TLS is
up, and no result or error text contains the password: smtplib's exceptions echo server replies,
so every message here is built from scratch.
"""

from __future__ import annotations

import smtplib
import ssl
import time
from dataclasses import dataclass

from ses_smtp_rotator._smtp_outcomes import AUTH, CONNECT, ProbeOutcome, classify
from ses_smtp_rotator.endpoints import TlsMode, tls_mode
from ses_smtp_rotator.exceptions import InvalidEndpointError, StartTlsNotOfferedError

__all__ = ["ProbeOutcome", "ProbeResult", "authenticate", "connect", "probe_login", "quit_quietly"]


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of :func:`probe_login`.

    Attributes
    ----------
    outcome
        What happened.
    code
        The SMTP reply code behind the outcome, when there was one.
    message
        What happened and what to check; never contains the password.
    elapsed
        Seconds the probe took.
    """

    outcome: ProbeOutcome
    code: int | None
    message: str
    elapsed: float

    @property
    def ok(self) -> bool:
        """Whether the login succeeded."""
        return self.outcome is ProbeOutcome.SUCCESS

    @property
    def retryable(self) -> bool:
        """Whether trying again later may succeed (535/454: a new key still propagating)."""
        return self.outcome is ProbeOutcome.AUTH_REJECTED


def connect(
    host: str,
    port: int,
    *,
    tls: TlsMode,
    timeout: float,
    ssl_context: ssl.SSLContext | None = None,
) -> smtplib.SMTP:
    """Open an SMTP connection and bring TLS up before anything else is sent.

    Parameters
    ----------
    host, port
        The SMTP server.
    tls
        ``TlsMode.STARTTLS`` (EHLO, STARTTLS, EHLO) or ``TlsMode.IMPLICIT`` (TLS from the start).
    timeout
        Seconds allowed for each network operation.
    ssl_context
        Context used to verify the server; default :func:`ssl.create_default_context` (certificate
        and host name checked, ``SSL_CERT_FILE`` honoured).

    Returns
    -------
    smtplib.SMTP
        A connection with TLS established and EHLO done; the caller closes it.

    Raises
    ------
    StartTlsNotOfferedError
        The server does not offer STARTTLS; nothing secret was sent.
    OSError
        Connection, DNS, TLS (:class:`ssl.SSLError`) and SMTP (:class:`smtplib.SMTPException`)
        failures, as raised by the standard library.

    Examples
    --------
    >>> with connect("email-smtp.eu-west-1.amazonaws.com", 587, tls=TlsMode.STARTTLS,
    ...              timeout=10) as smtp:  # doctest: +SKIP
    ...     smtp.login(access_key_id, password)
    """
    context = ssl_context or ssl.create_default_context()
    smtp: smtplib.SMTP
    if tls is TlsMode.IMPLICIT:
        smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        smtp = smtplib.SMTP(host, port, timeout=timeout)
    try:
        smtp.ehlo()
        if tls is not TlsMode.IMPLICIT:
            _require_starttls(smtp, f"{host}:{port}")
            smtp.starttls(context=context)
            smtp.ehlo()
    except BaseException:
        smtp.close()
        raise
    return smtp


def probe_login(  # noqa: PLR0913 - each option is keyword-only and documented
    *,
    host: str,
    port: int,
    username: str,
    password: str,
    tls: TlsMode | None = None,
    timeout: float = 10.0,
    ssl_context: ssl.SSLContext | None = None,
) -> ProbeResult:
    """Log in to an SMTP server once (TLS, AUTH, QUIT) and say how it went.

    Parameters
    ----------
    host, port
        The SMTP server, for example ``email-smtp.eu-west-1.amazonaws.com`` and ``587``.
    username, password
        The SMTP credentials (access key id and derived password).
    tls
        How to encrypt; default: from the port (:func:`~ses_smtp_rotator.endpoints.tls_mode`),
        STARTTLS for ports SES does not use.
    timeout
        Seconds allowed for each network operation.
    ssl_context
        See :func:`connect`.

    Returns
    -------
    ProbeResult
        Never raises for a network or SMTP failure: the outcome names it.

    Examples
    --------
    >>> result = probe_login(host="email-smtp.eu-west-1.amazonaws.com", port=587,
    ...                      username=key_id, password=password)  # doctest: +SKIP
    >>> result.ok, result.outcome  # doctest: +SKIP
    (True, <ProbeOutcome.SUCCESS: 'success'>)
    """
    where = f"{host}:{port}"
    started = time.monotonic()
    try:
        smtp = connect(
            host, port, tls=tls or _tls_of(port), timeout=timeout, ssl_context=ssl_context
        )
    except (OSError, StartTlsNotOfferedError) as err:
        return _result(*classify(err, CONNECT, where, username), started)
    try:
        authenticate(smtp, username, password, where=where)
    except OSError as err:
        if isinstance(err, smtplib.SMTPResponseException):
            quit_quietly(smtp)
        smtp.close()
        return _result(*classify(err, AUTH, where, username), started)
    quit_quietly(smtp)
    return _result(ProbeOutcome.SUCCESS, 235, f"logged in to {where} as {username}", started)


def _require_starttls(smtp: smtplib.SMTP, where: str) -> None:
    if not smtp.has_extn("starttls"):
        msg = (
            f"{where} does not offer STARTTLS, so no credentials were sent: check the port "
            "(587, 25, 2587 use STARTTLS; 465, 2465 implicit TLS) and that no proxy strips STARTTLS"
        )
        raise StartTlsNotOfferedError(msg)


def _tls_of(port: int) -> TlsMode:
    try:
        return tls_mode(port)
    except InvalidEndpointError:
        return TlsMode.STARTTLS


def authenticate(smtp: smtplib.SMTP, username: str, password: str, *, where: str) -> None:
    """Send exactly one ``AUTH`` (PLAIN, else LOGIN) on a connection that is already TLS.

    One command only: ``smtplib.login()`` tries the next mechanism after a 535, which doubles the
    failed attempts SES counts and hides the first reply.

    Raises
    ------
    smtplib.SMTPAuthenticationError
        The server refused the credentials (535, 454...).
    smtplib.SMTPNotSupportedError
        ``where`` offers neither PLAIN nor LOGIN.
    """
    mechanisms = smtp.esmtp_features.get("auth", "").upper().split()
    smtp.user, smtp.password = username, password
    if "PLAIN" in mechanisms:
        smtp.auth("PLAIN", smtp.auth_plain)
    elif "LOGIN" in mechanisms:
        smtp.auth("LOGIN", smtp.auth_login)
    else:
        msg = f"{where} offers no AUTH PLAIN or LOGIN after TLS"
        raise smtplib.SMTPNotSupportedError(msg)


def quit_quietly(smtp: smtplib.SMTP) -> None:
    """Say ``QUIT``; if the connection is already gone, just close it."""
    try:
        smtp.quit()
    except OSError:  # smtplib.SMTPException is an OSError
        smtp.close()


def _result(outcome: ProbeOutcome, code: int | None, message: str, started: float) -> ProbeResult:
    return ProbeResult(outcome, code, message, time.monotonic() - started)
