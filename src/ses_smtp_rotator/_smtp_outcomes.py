"""How an SMTP login probe failed: the outcomes and the mapping from exceptions and replies.

Messages are built here from the reply code and local facts (OpenSSL's verify message, errno text),
never from a server's reply text or an exception's text, which can echo what the client sent.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from enum import StrEnum

from ses_smtp_rotator.exceptions import StartTlsNotOfferedError

_AUTH_RETRY_CODES = frozenset({535, 454})
_CODE_TLS_REQUIRED = 530
_CODE_UNAVAILABLE = 421
CONNECT, AUTH = "connect", "auth"


class ProbeOutcome(StrEnum):
    """What an SMTP login probe found. Only ``AUTH_REJECTED`` is worth retrying."""

    SUCCESS = "success"
    AUTH_REJECTED = "auth-rejected"
    NO_STARTTLS = "no-starttls"
    TLS_ERROR = "tls-error"
    TLS_REQUIRED = "tls-required"
    CONNECTION_REFUSED = "connection-refused"
    DNS_FAILURE = "dns-failure"
    TIMEOUT = "timeout"
    SERVICE_UNAVAILABLE = "service-unavailable"
    CONNECTION_LOST = "connection-lost"
    PROTOCOL_ERROR = "protocol-error"


def classify(
    err: BaseException, stage: str, where: str, username: str
) -> tuple[ProbeOutcome, int | None, str]:
    """Return the outcome, reply code and message for an error at ``stage`` (connect/auth)."""
    if isinstance(err, StartTlsNotOfferedError):
        return ProbeOutcome.NO_STARTTLS, None, str(err)
    if isinstance(err, smtplib.SMTPResponseException):
        return _classify_reply(err.smtp_code, stage, where, username)
    if isinstance(err, smtplib.SMTPServerDisconnected) and isinstance(
        err.__context__, TimeoutError
    ):
        err = err.__context__
    return _classify_os_error(err, where)


def _classify_reply(
    code: int, stage: str, where: str, username: str
) -> tuple[ProbeOutcome, int | None, str]:
    if stage == AUTH and code in _AUTH_RETRY_CODES:
        msg = (
            f"{where} refused the credentials of {username} ({code}): check that the user name "
            "is the access key id, the password is derived for this endpoint's region, the key "
            "is active and had a few minutes to reach SES (`ses-smtp-rotator check` diagnoses)"
        )
        return ProbeOutcome.AUTH_REJECTED, code, msg
    if code == _CODE_TLS_REQUIRED:
        msg = f"{where} requires TLS before this command (530): use STARTTLS or implicit TLS"
        return ProbeOutcome.TLS_REQUIRED, code, msg
    if code == _CODE_UNAVAILABLE:
        msg = f"{where} is not available (421) and closed the connection: try again later"
        return ProbeOutcome.SERVICE_UNAVAILABLE, code, msg
    if stage == CONNECT and code == 454:  # noqa: PLR2004 - "TLS not available" to STARTTLS
        msg = f"{where} could not start TLS ({code}): try again later or use implicit TLS"
        return ProbeOutcome.TLS_ERROR, code, msg
    msg = f"{where} answered {code} during {stage}: unexpected for an SES SMTP endpoint"
    return ProbeOutcome.PROTOCOL_ERROR, code, msg


# First match wins: subclasses before their bases (SSLCertVerificationError is an SSLError, every
# smtplib and socket error is an OSError). {detail} is local text (OpenSSL, errno), never a reply.
_OS_ERRORS: tuple[tuple[type[BaseException], ProbeOutcome, str], ...] = (
    (
        ssl.SSLCertVerificationError,
        ProbeOutcome.TLS_ERROR,
        (
            "TLS certificate verification failed for {where} ({detail}): check the host name and "
            "SSL_CERT_FILE / the CA bundle"
        ),
    ),
    (
        ssl.SSLError,
        ProbeOutcome.TLS_ERROR,
        "TLS handshake with {where} failed ({detail}): check the port's TLS mode",
    ),
    (
        socket.gaierror,
        ProbeOutcome.DNS_FAILURE,
        "cannot resolve the host of {where} ({detail}): check the host name and DNS",
    ),
    (
        TimeoutError,
        ProbeOutcome.TIMEOUT,
        "{where} did not answer in time: check firewalls, security groups and the port",
    ),
    (
        ConnectionRefusedError,
        ProbeOutcome.CONNECTION_REFUSED,
        "{where} refused the connection: check the host and port",
    ),
    (
        smtplib.SMTPNotSupportedError,
        ProbeOutcome.PROTOCOL_ERROR,
        "{where} offers no AUTH PLAIN or LOGIN after TLS: is it an SES SMTP endpoint?",
    ),
    (
        smtplib.SMTPServerDisconnected,
        ProbeOutcome.CONNECTION_LOST,
        "{where} closed the connection unexpectedly: try again; if it persists check the port",
    ),
    (
        ConnectionError,
        ProbeOutcome.CONNECTION_LOST,
        "{where} closed the connection unexpectedly ({detail}): try again",
    ),
    (
        smtplib.SMTPException,
        ProbeOutcome.PROTOCOL_ERROR,
        "unexpected SMTP exchange with {where}: is it an SES SMTP endpoint?",
    ),
)


def _classify_os_error(err: BaseException, where: str) -> tuple[ProbeOutcome, int | None, str]:
    detail = (
        getattr(err, "verify_message", None)
        or getattr(err, "reason", None)
        or getattr(err, "strerror", None)
        or type(err).__name__
    )
    for kind, outcome, template in _OS_ERRORS:
        if isinstance(err, kind):
            return outcome, None, template.format(where=where, detail=detail)
    msg = f"cannot connect to {where} ({detail}): check the host, port and network path"
    return ProbeOutcome.CONNECTION_REFUSED, None, msg
