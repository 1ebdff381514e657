"""The per-connection SMTP protocol of :class:`sandbox.ses_smtp.SesSmtpServer` (aiosmtpd).

Kept apart from the server's lifecycle so each module stays small. The replies copy SES's wording.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import TYPE_CHECKING, Any, Protocol

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from ses_smtp_rotator.password import derive_smtp_password

if TYPE_CHECKING:
    import ssl
    from collections.abc import Sequence
    from datetime import datetime


class Accepted(Protocol):
    """What the server's credential check answers (:class:`sandbox.ses_smtp.AuthAttempt`)."""

    @property
    def accepted(self) -> bool:
        """Whether the login was accepted."""
        ...


class Waiting(Protocol):
    """How long a key still waits (:class:`sandbox._propagation.Propagation`)."""

    def wait(self, key: Any) -> float:  # noqa: ANN401 - moto's AccessKey is untyped
        """Seconds until SES accepts ``key``."""
        ...


class Server(Protocol):
    """What a connection needs of its server (:class:`sandbox.ses_smtp.Server`).

    Declared here, so that this module does not import the server module that imports it.
    """

    account_id: str
    region: str
    auth_mechanisms: tuple[str, ...]

    @property
    def propagation(self) -> Waiting:
        """The propagation delay and the keys that have propagated."""
        ...

    def record_message(self, sender: str, recipients: Sequence[str], data: bytes, key: str) -> str:
        """Store a delivered message; return the reply."""
        ...

    def forget(self, connection: SesSmtp) -> None:
        """Drop a closed connection."""
        ...

    def take_fault(self) -> str | None:
        """Return the fault armed for the next AUTH, if any."""
        ...

    def check_credentials(self, access_key_id: str, password: bytes) -> Accepted:
        """Check one AUTH's credentials."""
        ...


SES_HOSTNAME = "email-smtp.amazonaws.com"
REPLY_TLS_FIRST = "530 5.7.0 Must issue a STARTTLS command first"
REPLY_AUTH_FIRST = "530 5.7.0 Authentication required"
REPLY_INVALID = "535 Authentication Credentials Invalid"
REPLY_OK = "235 Authentication successful."
# aiosmtpd warns on every successful AUTH that Session.login_data is deprecated (it sets it itself).
logging.getLogger("mail.log").setLevel(logging.ERROR)
FAULT_REPLIES = {
    "421": "421 4.3.2 Service not available, closing transmission channel",
    "454": "454 4.7.0 Temporary authentication failure",
    "530": REPLY_TLS_FIRST,
}


def utcnow() -> datetime:
    """Return the time on moto's clock, the one its keys' ``create_date`` comes from."""
    from moto.core.utils import utcnow as moto_utcnow  # noqa: PLC0415 - moto is heavy; import on use

    return moto_utcnow()


def access_keys(account_id: str) -> list[Any]:
    """Every access key of every IAM user of ``account_id`` in moto (its untyped AccessKey)."""
    from moto.iam.models import iam_backends  # noqa: PLC0415 - moto is heavy; import on use

    backend = iam_backends[account_id]["global"]
    # list() copies under the GIL: the test thread may be adding or deleting users meanwhile.
    return [key for user in list(backend.users.values()) for key in list(user.access_keys)]


def owner_of(account_id: str, access_key_id: str) -> str | None:
    """Return the account whose IAM user holds the key: ``account_id`` first, then any other.

    SES's SMTP endpoint of a region serves every account; the access key says whose it is.
    """
    from moto.iam.models import iam_backends  # noqa: PLC0415 - moto is heavy; import on use

    others = [account for account in list(iam_backends) if account != account_id]
    return next(
        (
            account
            for account in (account_id, *others)
            if any(k.access_key_id == access_key_id for k in access_keys(account))
        ),
        None,
    )


def find_access_key(account_id: str, access_key_id: str) -> Any | None:  # noqa: ANN401 - moto's AccessKey is untyped
    """Return the key, looked up in ``account_id`` first, then in the other accounts."""
    owner = owner_of(account_id, access_key_id)
    found = access_keys(owner) if owner is not None else []
    return next((k for k in found if k.access_key_id == access_key_id), None)


def mark_used(account_id: str, access_key_id: str, region: str) -> None:
    """Record a successful login as the key's last use by SES (IAM's GetAccessKeyLastUsed)."""
    from moto.iam.models import mark_account_as_visited  # noqa: PLC0415 - import on use

    owner = owner_of(account_id, access_key_id) or account_id
    mark_account_as_visited(owner, access_key_id, "ses", region)


def verdict(server: Server, access_key_id: str, password: bytes) -> str:
    """Return why a login is refused (``unknown-key`` ...), or ``ok``."""
    key = find_access_key(server.account_id, access_key_id)
    if key is None:
        return "unknown-key"
    if key.status != "Active":
        return "inactive"
    expected = derive_smtp_password(key.secret_access_key, server.region).encode("ascii")
    if not hmac.compare_digest(expected, password):
        return "bad-password"
    if server.propagation.wait(key) > 0:
        return "propagating"
    return "ok"


class _Recorder:
    """aiosmtpd handler: record each message with the access key that sent it."""

    def __init__(self, server: Server) -> None:
        self._server = server

    async def handle_DATA(self, _smtp: SMTP, session: Any, envelope: Any) -> str:  # noqa: ANN401, N802 - aiosmtpd's hook name and untyped objects
        data = envelope.original_content or envelope.content or b""
        return self._server.record_message(
            envelope.mail_from, envelope.rcpt_tos, bytes(data), str(session.auth_data)
        )


class SesSmtp(SMTP):
    """One SMTP connection with SES's rules for TLS, AUTH and MAIL."""

    def __init__(
        self, server: Server, *, starttls: ssl.SSLContext | None, implicit_tls: bool
    ) -> None:
        super().__init__(
            _Recorder(server),
            hostname=SES_HOSTNAME,
            tls_context=starttls,
            # AUTH is advertised before TLS as SES does; smtp_AUTH answers 530 until TLS is up.
            auth_require_tls=False,
            authenticator=self._check_login,
            auth_exclude_mechanism=[
                m for m in ("PLAIN", "LOGIN") if m not in server.auth_mechanisms
            ],
            loop=asyncio.get_running_loop(),
        )
        self._ses = server
        self._implicit_tls = implicit_tls

    @property
    def encrypted(self) -> bool:
        """Whether TLS is up (implicit, or after STARTTLS)."""
        return self._implicit_tls or self._tls_protocol is not None

    def abort(self) -> None:
        """Close the connection at once (server shutdown, ``drop`` fault)."""
        for transport in (self.transport, self._original_transport):
            if isinstance(transport, asyncio.Transport):
                transport.abort()

    def connection_lost(self, error: Exception | None) -> None:
        """Forget the connection, then let aiosmtpd clean up."""
        self._ses.forget(self)
        super().connection_lost(error)

    async def smtp_AUTH(self, arg: str) -> None:  # noqa: N802 - aiosmtpd dispatches on this name
        """Refuse AUTH before TLS, fire a pending fault, or authenticate."""
        if not self.encrypted and self.session is not None and self.session.extended_smtp:
            await self.push(REPLY_TLS_FIRST)
            return
        fault = self._ses.take_fault()
        if fault is None:
            await super().smtp_AUTH(arg)
        elif fault == "drop":
            self.abort()
        elif fault == "hang":
            await asyncio.get_running_loop().create_future()  # cancelled by disconnect or stop()
        else:
            await self.push(FAULT_REPLIES[fault])
            if fault == "421":
                self.abort()

    async def smtp_MAIL(self, arg: str | None) -> None:  # noqa: N802 - aiosmtpd dispatches on this name
        """Refuse MAIL before a successful AUTH."""
        if self.session is not None and not self.session.authenticated:
            await self.push(REPLY_AUTH_FIRST)
            return
        await super().smtp_MAIL(arg)

    def _check_login(
        self,
        _smtp: SMTP,
        _session: object,
        _envelope: object,
        _mechanism: str,
        data: object,
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False, message=REPLY_INVALID)
        key_id = data.login.decode("utf-8", errors="replace")
        attempt = self._ses.check_credentials(key_id, data.password)
        if attempt.accepted:
            return AuthResult(success=True, auth_data=key_id, message=REPLY_OK)
        return AuthResult(success=False, handled=False, message=REPLY_INVALID)
