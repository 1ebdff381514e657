"""probe_login against the SES-like server: every outcome, and never the password in a message."""

from __future__ import annotations

import socket
import ssl
import threading
from typing import TYPE_CHECKING

import pytest

from sandbox.tls import TestCa
from ses_smtp_rotator.endpoints import TlsMode
from ses_smtp_rotator.smtp import ProbeOutcome, ProbeResult, connect, probe_login

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sandbox.ses_smtp import SesSmtpServer
    from tests.conftest import IamKey

TIMEOUT = 1.5


def probe(server: SesSmtpServer, key: IamKey, **options: object) -> ProbeResult:
    arguments: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "username": key.access_key_id,
        "password": key.password(),
        "timeout": TIMEOUT,
        **options,
    }
    result = probe_login(**arguments)  # type: ignore[arg-type]
    assert str(arguments["password"]) not in result.message
    assert key.secret_access_key not in result.message
    return result


def test_success_with_starttls_verified_through_ssl_cert_file(
    ses_server: SesSmtpServer, smtp_user: IamKey
) -> None:
    # GIVEN the test CA trusted only through SSL_CERT_FILE (the fixture sets it)
    # WHEN probing with the default SSL context
    result = probe(ses_server, smtp_user)
    # THEN the login succeeds, once
    assert (result.outcome, result.code, result.ok, result.retryable) == (
        ProbeOutcome.SUCCESS,
        235,
        True,
        False,
    )
    assert smtp_user.access_key_id in result.message
    assert len(ses_server.auth_attempts) == 1


def test_success_with_implicit_tls(
    ses_server_factory: Callable[..., SesSmtpServer], smtp_user: IamKey
) -> None:
    server = ses_server_factory(implicit_tls=True)
    result = probe(server, smtp_user, port=server.tls_port, tls=TlsMode.IMPLICIT)
    assert result.outcome is ProbeOutcome.SUCCESS


@pytest.mark.parametrize(
    ("password", "fault", "code"),
    [
        pytest.param("wrong-password", None, 535, id="535-wrong-password"),
        pytest.param(None, "454", 454, id="454-temporary"),
    ],
)
def test_auth_rejections_are_retryable(
    ses_server: SesSmtpServer,
    smtp_user: IamKey,
    password: str | None,
    fault: str | None,
    code: int,
) -> None:
    # GIVEN a refused login (bad password, or SES's temporary failure)
    if fault:
        ses_server.fail_next(fault)
    # WHEN probing
    result = probe(ses_server, smtp_user, password=password or smtp_user.password())
    # THEN AUTH_REJECTED, worth retrying, with one AUTH only (no silent fallback to LOGIN)
    assert (result.outcome, result.code, result.retryable) == (
        ProbeOutcome.AUTH_REJECTED,
        code,
        True,
    )
    assert len(ses_server.auth_attempts) == (1 if fault is None else 0)


@pytest.mark.parametrize(
    ("fault", "outcome", "code"),
    [
        pytest.param("421", ProbeOutcome.SERVICE_UNAVAILABLE, 421, id="421"),
        pytest.param("530", ProbeOutcome.TLS_REQUIRED, 530, id="530"),
        pytest.param("drop", ProbeOutcome.CONNECTION_LOST, None, id="drop"),
        pytest.param("hang", ProbeOutcome.TIMEOUT, None, id="hang"),
    ],
)
def test_server_faults_fail_fast(
    ses_server: SesSmtpServer,
    smtp_user: IamKey,
    fault: str,
    outcome: ProbeOutcome,
    code: int | None,
) -> None:
    # GIVEN the server misbehaves at AUTH
    ses_server.fail_next(fault)
    # WHEN probing with a 0.5 s timeout
    result = probe(ses_server, smtp_user, timeout=0.5)
    # THEN the outcome names the fault and is not retryable
    assert (result.outcome, result.code, result.retryable) == (outcome, code, False)
    assert result.elapsed < 2


def test_no_starttls_means_no_credentials_sent(
    ses_server_factory: Callable[..., SesSmtpServer], smtp_user: IamKey
) -> None:
    # GIVEN a server that does not offer STARTTLS
    server = ses_server_factory(offer_starttls=False)
    # WHEN probing THEN NO_STARTTLS and the server never saw an AUTH
    result = probe(server, smtp_user)
    assert result.outcome is ProbeOutcome.NO_STARTTLS
    assert server.auth_attempts == []


@pytest.mark.parametrize(
    ("host", "context"),
    [
        pytest.param("localhost", lambda: TestCa().client_ssl_context(), id="untrusted-ca"),
        pytest.param("localhost", ssl.create_default_context, id="no-ca-file"),
    ],
)
def test_untrusted_certificate_is_a_tls_error(
    ses_server: SesSmtpServer,
    smtp_user: IamKey,
    monkeypatch: pytest.MonkeyPatch,
    host: str,
    context: Callable[[], ssl.SSLContext],
) -> None:
    # GIVEN a client that does not trust the server's CA
    monkeypatch.delenv("SSL_CERT_FILE")
    # WHEN probing THEN TLS_ERROR, pointing at the CA bundle, and nothing was sent
    result = probe(ses_server, smtp_user, host=host, ssl_context=context())
    assert result.outcome is ProbeOutcome.TLS_ERROR
    assert "SSL_CERT_FILE" in result.message
    assert ses_server.auth_attempts == []


def test_connection_refused(smtp_user: IamKey, ses_server: SesSmtpServer) -> None:
    # GIVEN a port nobody listens on (bound, then released)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = probe(ses_server, smtp_user, port=port)
    assert result.outcome is ProbeOutcome.CONNECTION_REFUSED


def test_dns_failure(smtp_user: IamKey, ses_server: SesSmtpServer) -> None:
    # Measured on this offline machine: getaddrinfo("x.invalid", 25) fails in < 0.01 s (.invalid
    # is reserved by RFC 6761), so a real lookup is fast enough; the bound below catches a slow one.
    result = probe(ses_server, smtp_user, host="x.invalid")
    assert result.outcome is ProbeOutcome.DNS_FAILURE
    assert result.elapsed < 2


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (kernel backlog) and never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def test_silent_server_times_out(
    smtp_user: IamKey, ses_server: SesSmtpServer, silent_port: int
) -> None:
    result = probe(ses_server, smtp_user, port=silent_port, timeout=0.5)
    assert result.outcome is ProbeOutcome.TIMEOUT
    assert 0.4 < result.elapsed < 2


@pytest.fixture
def odd_server() -> Iterator[int]:
    """A server whose greeting is a 554 (not an SES answer): one connection, then it stops."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(2)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            return
        with conn:
            conn.sendall(b"554 no SMTP service here\r\n")

    thread = threading.Thread(target=serve)
    thread.start()
    yield listener.getsockname()[1]
    thread.join(3)
    listener.close()


def test_unexpected_reply_is_a_protocol_error(
    smtp_user: IamKey, ses_server: SesSmtpServer, odd_server: int
) -> None:
    result = probe(ses_server, smtp_user, port=odd_server)
    assert (result.outcome, result.code) == (ProbeOutcome.PROTOCOL_ERROR, 554)


def test_connect_is_reusable_for_sending(ses_server: SesSmtpServer, smtp_user: IamKey) -> None:
    # GIVEN a connection from connect() (TLS up, EHLO done)
    with connect(ses_server.host, ses_server.port, tls=TlsMode.STARTTLS, timeout=TIMEOUT) as smtp:
        assert isinstance(smtp.sock, ssl.SSLSocket)
        # WHEN logging in and sending
        smtp.login(smtp_user.access_key_id, smtp_user.password())
        smtp.sendmail("app@example.com", ["to@example.com"], b"Subject: x\r\n\r\nbody")
    # THEN the server has the message
    assert [m.recipients for m in ses_server.messages] == [("to@example.com",)]


@pytest.mark.parametrize(
    ("mechanisms", "outcome"),
    [
        pytest.param(("LOGIN",), ProbeOutcome.SUCCESS, id="login-only"),
        pytest.param((), ProbeOutcome.PROTOCOL_ERROR, id="no-mechanism"),
    ],
)
def test_auth_mechanism_choice(
    ses_server_factory: Callable[..., SesSmtpServer],
    smtp_user: IamKey,
    mechanisms: tuple[str, ...],
    outcome: ProbeOutcome,
) -> None:
    # GIVEN a server offering only some AUTH mechanisms, WHEN probing THEN it copes or says so
    server = ses_server_factory(auth_mechanisms=mechanisms)
    assert probe(server, smtp_user).outcome is outcome


def test_wrong_tls_mode_for_the_port(
    ses_server_factory: Callable[..., SesSmtpServer], smtp_user: IamKey
) -> None:
    server = ses_server_factory(implicit_tls=True)
    # GIVEN implicit TLS against the STARTTLS port: the greeting is not a TLS record
    implicit = probe(server, smtp_user, tls=TlsMode.IMPLICIT)
    assert implicit.outcome is ProbeOutcome.TLS_ERROR
    # GIVEN STARTTLS against the implicit-TLS port: both sides wait for the other
    starttls = probe(server, smtp_user, port=server.tls_port, tls=TlsMode.STARTTLS, timeout=0.5)
    assert starttls.outcome is ProbeOutcome.TIMEOUT
    assert server.auth_attempts == []
