"""An SMTP server on 127.0.0.1 that behaves like Amazon SES SMTP, backed by moto's IAM.

* STARTTLS (or an implicit-TLS listener) with a certificate from a local test CA
  (:mod:`sandbox.tls`); ``AUTH`` before TLS gets ``530 5.7.0 Must issue a STARTTLS command first``.
* ``AUTH PLAIN`` / ``AUTH LOGIN`` accept only an *Active* access key of an IAM user in moto whose
  password is the v4 derivation for :attr:`SesSmtpServer.region`; anything else gets
  ``535 Authentication Credentials Invalid``. Keys are read straight from moto's in-process backend,
  so the server makes no AWS API call (benchmarks count those).
* A new key is refused for :attr:`SesSmtpServer.propagation_delay` seconds, as SES does while a key
  propagates. SES does not revoke a key that has propagated: raising the delay refuses only keys
  that had not propagated yet (lowering it lets waiting keys in sooner, as if time had passed).
* Fault hooks (:meth:`SesSmtpServer.fail_next`) for the fault-injection tests.

Run it with moto's server for a manual session: ``python -m sandbox.serve --region eu-west-1``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Self, get_args

from sandbox import _smtp_protocol
from sandbox._propagation import Propagation
from sandbox.tls import TestCa
from ses_smtp_rotator.endpoints import validate_region

if TYPE_CHECKING:
    import ssl
    from collections.abc import Sequence
    from types import TracebackType

FaultKind = Literal["drop", "421", "454", "530", "hang"]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
_BIND = "127.0.0.1"
_LOOP_TIMEOUT = 10.0


def _default_account_id() -> str:
    from moto.core.models import DEFAULT_ACCOUNT_ID  # noqa: PLC0415 - moto is heavy; import on use

    return str(DEFAULT_ACCOUNT_ID)


@dataclass(frozen=True)
class DeliveredMessage:
    """One message accepted after ``DATA``."""

    sender: str
    recipients: tuple[str, ...]
    data: bytes
    access_key_id: str


@dataclass(frozen=True)
class AuthAttempt:
    """One ``AUTH`` that reached the credential check (never the password).

    ``reason`` is ``ok``, ``bad-password``, ``inactive``, ``unknown-key`` or ``propagating``;
    ``at`` is a :func:`time.monotonic` timestamp.
    """

    access_key_id: str
    accepted: bool
    reason: str
    at: float


class SesSmtpServer:
    """An SES-like SMTP server running on its own event-loop thread.

    Parameters
    ----------
    region
        The SES region it plays: passwords must be derived for it.
    account_id
        moto account whose IAM users are looked up first (moto's default account by default);
        a key of another account is found too, as SES's endpoint serves every account.
    propagation_delay
        Seconds after a key's creation during which the right password still gets 535.
        Mutable while running (attribute of the same name); keys that propagated under the old
        delay stay accepted (:mod:`sandbox._propagation`).
    implicit_tls
        Also listen with implicit TLS (like port 465) on :attr:`tls_port`.
    offer_starttls
        ``False``: EHLO does not advertise STARTTLS (to test that clients refuse to go on).
    auth_mechanisms
        AUTH mechanisms offered after TLS (SES offers ``PLAIN`` and ``LOGIN``).

    Examples
    --------
    >>> with SesSmtpServer(region="eu-west-1") as server:  # doctest: +SKIP
    ...     smtplib.SMTP(server.host, server.port).starttls(context=server.client_ssl_context())
    """

    host = "localhost"

    def __init__(  # noqa: PLR0913 - keyword-only options, each documented
        self,
        *,
        region: str = "us-east-1",
        account_id: str | None = None,
        propagation_delay: float = 0.0,
        implicit_tls: bool = False,
        offer_starttls: bool = True,
        auth_mechanisms: Sequence[str] = ("PLAIN", "LOGIN"),
    ) -> None:
        self.region = validate_region(region)
        self.account_id = account_id or _default_account_id()
        self.propagation = Propagation(self.account_id, propagation_delay)
        self.implicit_tls = implicit_tls
        self.offer_starttls = offer_starttls
        self.auth_mechanisms = tuple(auth_mechanisms)
        self.port = 0
        self.tls_port: int | None = None
        self._ca = TestCa()
        self.ca_file = self._ca.ca_file
        self._lock = threading.Lock()
        self._messages: list[DeliveredMessage] = []
        self._auth_attempts: list[AuthAttempt] = []
        self._faults: collections.deque[str] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[asyncio.AbstractServer] = []
        self._connections: set[_smtp_protocol.SesSmtp] = set()

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> Self:
        """Bind free ports on 127.0.0.1 and serve on a new thread; return ``self``."""
        if self._loop is not None:
            msg = "the SMTP server is already running"
            raise RuntimeError(msg)
        loop = asyncio.new_event_loop()
        loop.set_exception_handler(_quiet_exception_handler)
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="ses-smtp", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), loop).result(_LOOP_TIMEOUT)
        return self

    def stop(self) -> None:
        """Close every connection (hung ones too), stop the thread and free the ports."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(TimeoutError):
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(_LOOP_TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_LOOP_TIMEOUT)
        loop.close()
        self._loop = self._thread = None
        self._servers.clear()

    def __enter__(self) -> Self:
        """Start the server."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        starttls = self._ca.server_ssl_context() if self.offer_starttls else None
        plain = await loop.create_server(
            lambda: self._connection(starttls, implicit=False), _BIND, 0
        )
        self._servers.append(plain)
        self.port = plain.sockets[0].getsockname()[1]
        if self.implicit_tls:
            context = self._ca.server_ssl_context()
            tls = await loop.create_server(
                lambda: self._connection(None, implicit=True), _BIND, 0, ssl=context
            )
            self._servers.append(tls)
            self.tls_port = tls.sockets[0].getsockname()[1]

    def _connection(
        self, starttls: ssl.SSLContext | None, *, implicit: bool
    ) -> _smtp_protocol.SesSmtp:
        connection = _smtp_protocol.SesSmtp(self, starttls=starttls, implicit_tls=implicit)
        self._connections.add(connection)
        return connection

    def forget(self, connection: _smtp_protocol.SesSmtp) -> None:
        """Drop a closed connection from the set closed at shutdown (called by the protocol)."""
        self._connections.discard(connection)

    async def _shutdown(self) -> None:
        for server in self._servers:
            server.close()
        for connection in list(self._connections):
            connection.abort()
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        await asyncio.sleep(0)  # let the transports' connection_lost callbacks run

    # -- TLS ---------------------------------------------------------------------------------------
    def client_ssl_context(self) -> ssl.SSLContext:
        """Return a client context that trusts the test CA (hostname verification on)."""
        return self._ca.client_ssl_context()

    # -- faults ------------------------------------------------------------------------------------
    def fail_next(self, kind: str, count: int = 1) -> None:
        """Make the next ``count`` AUTH commands fail with ``kind``.

        Kinds: ``drop`` (close the connection mid-AUTH), ``421`` (421 then close), ``454``
        (temporary authentication failure), ``530`` (TLS required, as if the client had skipped
        STARTTLS), ``hang`` (never answer; ended by the client's timeout or by :meth:`stop`).

        Raises
        ------
        ValueError
            ``kind`` is not one of :data:`FAULT_KINDS` or ``count`` is below 1.
        """
        if kind not in FAULT_KINDS or count < 1:
            msg = f"fault kind must be one of {FAULT_KINDS} and count >= 1, got {kind!r}, {count}"
            raise ValueError(msg)
        with self._lock:
            self._faults.extend([kind] * count)

    @property
    def pending_faults(self) -> int:
        """How many armed faults have not fired yet."""
        with self._lock:
            return len(self._faults)

    def take_fault(self) -> str | None:
        """Return and consume the next pending fault, if any (called by the protocol)."""
        with self._lock:
            return self._faults.popleft() if self._faults else None

    # -- records -----------------------------------------------------------------------------------
    @property
    def messages(self) -> list[DeliveredMessage]:
        """Messages delivered so far (a snapshot)."""
        with self._lock:
            return list(self._messages)

    @property
    def auth_attempts(self) -> list[AuthAttempt]:
        """AUTH attempts checked so far (a snapshot)."""
        with self._lock:
            return list(self._auth_attempts)

    def record_message(self, sender: str, recipients: Sequence[str], data: bytes, key: str) -> str:
        """Store a delivered message and return an SES-like ``250 Ok <id>`` reply."""
        message = DeliveredMessage(sender, tuple(recipients), data, key)
        with self._lock:
            self._messages.append(message)
        return f"250 Ok {uuid.uuid4()}"

    @property
    def propagation_delay(self) -> float:
        """Seconds a new key is refused after its creation (see :mod:`sandbox._propagation`)."""
        return self.propagation.delay

    @propagation_delay.setter
    def propagation_delay(self, seconds: float) -> None:
        self.propagation.delay = seconds

    def propagates_in(self, access_key_id: str) -> float:
        """Seconds until a login with this key is accepted (0: propagated, or unknown to moto)."""
        key = _smtp_protocol.find_access_key(self.account_id, access_key_id)
        return 0.0 if key is None else self.propagation.wait(key)

    def check_credentials(self, access_key_id: str, password: bytes) -> AuthAttempt:
        """Check one login against moto's IAM backend and record the attempt."""
        reason = _smtp_protocol.verdict(self, access_key_id, password)
        attempt = AuthAttempt(access_key_id, reason == "ok", reason, time.monotonic())
        if attempt.accepted:  # SES records the use, as IAM's GetAccessKeyLastUsed then shows
            _smtp_protocol.mark_used(self.account_id, access_key_id, self.region)
        with self._lock:
            self._auth_attempts.append(attempt)
        return attempt


def _quiet_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # Failed handshakes and dropped peers are what the fault and TLS tests provoke on purpose.
    if isinstance(context.get("exception"), OSError):
        return
    loop.default_exception_handler(context)
