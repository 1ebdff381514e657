"""The SES-like SMTP server refuses what SES refuses, so the tests built on it can fail."""

from __future__ import annotations

import os
import signal
import smtplib
import threading
import time
from typing import TYPE_CHECKING

import pytest

from sandbox import serve
from sandbox.ses_smtp import SesSmtpServer
from tests.conftest import create_smtp_key

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_iam import IAMClient

    from tests.conftest import IamKey

TIMEOUT = 2.0


def open_tls(server: SesSmtpServer, timeout: float = TIMEOUT) -> smtplib.SMTP:
    smtp = smtplib.SMTP(server.host, server.port, timeout=timeout)
    smtp.starttls(context=server.client_ssl_context())
    smtp.ehlo()
    return smtp


def auth_code(server: SesSmtpServer, username: str, password: str) -> int:
    with open_tls(server) as smtp:
        smtp.user, smtp.password = username, password
        try:
            return smtp.auth("PLAIN", smtp.auth_plain)[0]
        except smtplib.SMTPAuthenticationError as err:
            return err.smtp_code


def test_right_password_of_an_active_key_logs_in(
    ses_server: SesSmtpServer, smtp_user: IamKey
) -> None:
    # GIVEN an Active key and its v4 password for the server's region
    # WHEN logging in
    code = auth_code(ses_server, smtp_user.access_key_id, smtp_user.password())
    # THEN SES says 235 and records an accepted attempt without the password
    assert code == 235
    [attempt] = ses_server.auth_attempts
    assert (attempt.access_key_id, attempt.accepted, attempt.reason) == (
        smtp_user.access_key_id,
        True,
        "ok",
    )
    assert smtp_user.password() not in repr(ses_server.auth_attempts)


@pytest.mark.parametrize(
    ("password_for", "reason"),
    [
        pytest.param(lambda key: key.password("eu-west-1"), "bad-password", id="other-region"),
        pytest.param(lambda key: key.secret_access_key, "bad-password", id="raw-secret-key"),
        pytest.param(lambda _key: "not-a-password", "bad-password", id="garbage"),
    ],
)
def test_wrong_password_is_refused_with_535(
    ses_server: SesSmtpServer, smtp_user: IamKey, password_for: Callable[[IamKey], str], reason: str
) -> None:
    # GIVEN an Active key, WHEN logging in with a password that is not its us-east-1 v4 password
    code = auth_code(ses_server, smtp_user.access_key_id, password_for(smtp_user))
    # THEN 535, and the attempt says why
    assert code == 535
    assert [a.reason for a in ses_server.auth_attempts] == [reason]


def test_deactivated_key_is_refused(
    ses_server: SesSmtpServer, smtp_user: IamKey, iam: IAMClient
) -> None:
    # GIVEN a key that was set Inactive
    iam.update_access_key(
        UserName=smtp_user.user_name, AccessKeyId=smtp_user.access_key_id, Status="Inactive"
    )
    # WHEN logging in with its right password THEN 535 (inactive)
    assert auth_code(ses_server, smtp_user.access_key_id, smtp_user.password()) == 535
    assert ses_server.auth_attempts[-1].reason == "inactive"


def test_key_of_a_deleted_user_is_refused(
    ses_server: SesSmtpServer, smtp_user: IamKey, iam: IAMClient
) -> None:
    # GIVEN the user (and so the key) was deleted
    iam.delete_access_key(UserName=smtp_user.user_name, AccessKeyId=smtp_user.access_key_id)
    iam.delete_user(UserName=smtp_user.user_name)
    # WHEN logging in THEN 535 (unknown key)
    assert auth_code(ses_server, smtp_user.access_key_id, smtp_user.password()) == 535
    assert ses_server.auth_attempts[-1].reason == "unknown-key"


def test_auth_before_starttls_gets_530(ses_server: SesSmtpServer, smtp_user: IamKey) -> None:
    # GIVEN a plain connection (EHLO done, no STARTTLS)
    with smtplib.SMTP(ses_server.host, ses_server.port, timeout=TIMEOUT) as smtp:
        smtp.ehlo()
        # WHEN AUTH is sent in the clear
        code, text = smtp.docmd("AUTH", "PLAIN")
    # THEN SES's 530, and no credential check happened
    assert (code, text) == (530, b"5.7.0 Must issue a STARTTLS command first")
    assert ses_server.auth_attempts == []
    assert smtp_user.access_key_id  # the key existed: the refusal is about TLS only


def test_new_key_is_refused_until_propagation_delay_passes(
    ses_server_factory: Callable[..., SesSmtpServer], smtp_user: IamKey
) -> None:
    # GIVEN a propagation delay of 0.3 s and a key created just now
    server = ses_server_factory(propagation_delay=0.3)
    # WHEN logging in at once THEN 535 (propagating)
    assert auth_code(server, smtp_user.access_key_id, smtp_user.password()) == 535
    assert server.auth_attempts[-1].reason == "propagating"
    # WHEN logging in after the delay THEN 235
    time.sleep(0.35)
    assert auth_code(server, smtp_user.access_key_id, smtp_user.password()) == 235


def test_raising_the_delay_refuses_only_keys_that_had_not_propagated(
    ses_server: SesSmtpServer, smtp_user: IamKey, iam: IAMClient
) -> None:
    # GIVEN a key that propagated (no delay), then a longer delay and a key made after it
    ses_server.propagation_delay = 60.0
    newer = create_smtp_key(iam)
    # WHEN both log in THEN SES does not revoke the first; the second is still propagating
    assert auth_code(ses_server, smtp_user.access_key_id, smtp_user.password()) == 235
    assert auth_code(ses_server, newer.access_key_id, newer.password()) == 535
    assert ses_server.auth_attempts[-1].reason == "propagating"
    # WHEN the delay is lowered again THEN the waiting key is let in (as if time had passed)
    ses_server.propagation_delay = 0.0
    assert auth_code(ses_server, newer.access_key_id, newer.password()) == 235


def test_implicit_tls_listener_accepts_login(
    ses_server_factory: Callable[..., SesSmtpServer], smtp_user: IamKey
) -> None:
    # GIVEN a server with an implicit-TLS listener
    server = ses_server_factory(implicit_tls=True)
    assert server.tls_port is not None
    assert server.tls_port != server.port
    # WHEN logging in over TLS from the first byte
    context = server.client_ssl_context()
    with smtplib.SMTP_SSL(server.host, server.tls_port, timeout=TIMEOUT, context=context) as smtp:
        smtp.ehlo()
        code, _ = smtp.login(smtp_user.access_key_id, smtp_user.password())
    # THEN 235
    assert code == 235


def test_no_tls_port_unless_asked(ses_server: SesSmtpServer) -> None:
    assert ses_server.tls_port is None


def test_messages_are_recorded_with_the_sending_key(
    ses_server: SesSmtpServer, smtp_user: IamKey
) -> None:
    # GIVEN a logged-in session
    with open_tls(ses_server) as smtp:
        smtp.login(smtp_user.access_key_id, smtp_user.password())
        # WHEN a message is sent
        smtp.sendmail(
            "app@example.com", ["a@example.com", "b@example.com"], b"Subject: hi\r\n\r\nx"
        )
    # THEN it is recorded with the key that sent it
    [message] = ses_server.messages
    assert message.sender == "app@example.com"
    assert message.recipients == ("a@example.com", "b@example.com")
    assert b"Subject: hi" in message.data
    assert message.access_key_id == smtp_user.access_key_id


def test_mail_before_auth_gets_530(ses_server: SesSmtpServer) -> None:
    # GIVEN a TLS session without AUTH, WHEN MAIL FROM is sent THEN 530 and nothing is recorded
    with open_tls(ses_server) as smtp:
        code, text = smtp.mail("app@example.com")
    assert (code, text) == (530, b"5.7.0 Authentication required")
    assert ses_server.messages == []


def test_server_without_starttls_does_not_offer_it(
    ses_server_factory: Callable[..., SesSmtpServer],
) -> None:
    server = ses_server_factory(offer_starttls=False)
    with smtplib.SMTP(server.host, server.port, timeout=TIMEOUT) as smtp:
        smtp.ehlo()
        assert not smtp.has_extn("starttls")
        assert smtp.docmd("STARTTLS")[0] != 220


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        pytest.param("454", 454, id="454-temporary"),
        pytest.param("530", 530, id="530-tls-required"),
        pytest.param("421", 421, id="421-unavailable"),
    ],
)
def test_reply_faults_answer_once_then_heal(
    ses_server: SesSmtpServer, smtp_user: IamKey, kind: str, expected: int
) -> None:
    # GIVEN one fault armed
    ses_server.fail_next(kind)
    # WHEN logging in twice THEN the fault's reply once, then success (the fault was consumed)
    assert auth_code(ses_server, smtp_user.access_key_id, smtp_user.password()) == expected
    assert auth_code(ses_server, smtp_user.access_key_id, smtp_user.password()) == 235


def test_drop_fault_closes_the_connection_mid_auth(
    ses_server: SesSmtpServer, smtp_user: IamKey
) -> None:
    # GIVEN two drops armed
    ses_server.fail_next("drop", count=2)
    for _ in range(2):
        # WHEN logging in THEN the server hangs up without a reply
        with pytest.raises(smtplib.SMTPServerDisconnected):
            auth_code(ses_server, smtp_user.access_key_id, smtp_user.password())
    assert auth_code(ses_server, smtp_user.access_key_id, smtp_user.password()) == 235


def test_hang_fault_times_out_the_client_and_not_the_shutdown(
    ses_server_factory: Callable[..., SesSmtpServer], smtp_user: IamKey
) -> None:
    # GIVEN a hang armed and a client with a 0.5 s timeout
    server = ses_server_factory()
    server.fail_next("hang")
    smtp = open_tls(server, timeout=0.5)
    smtp.user, smtp.password = smtp_user.access_key_id, smtp_user.password()
    started = time.monotonic()
    # WHEN logging in THEN the client gives up on its timeout
    with pytest.raises(smtplib.SMTPServerDisconnected) as caught:
        smtp.auth("PLAIN", smtp.auth_plain)
    assert isinstance(caught.value.__context__, TimeoutError)
    assert time.monotonic() - started < 2
    # AND a server with a hung connection still stops at once, leaving no thread behind
    hung = open_tls(server)
    server.fail_next("hang")
    hung.putcmd("AUTH", "PLAIN AGFiYwB4")
    deadline = time.monotonic() + 2
    while server.pending_faults and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.pending_faults == 0
    started = time.monotonic()
    server.stop()
    hung.close()
    assert time.monotonic() - started < 2
    assert not [t for t in threading.enumerate() if t.name == "ses-smtp"]


def test_unknown_fault_kind_is_refused(ses_server: SesSmtpServer) -> None:
    with pytest.raises(ValueError, match="fault kind"):
        ses_server.fail_next("teapot")


def test_two_servers_run_at_once_and_stop_cleanly(
    ses_server_factory: Callable[..., SesSmtpServer], smtp_user: IamKey
) -> None:
    # GIVEN two servers for different regions
    first = ses_server_factory()
    second = SesSmtpServer(region="eu-west-1")
    with second:
        # WHEN each is asked with its own region's password THEN both accept
        assert first.port != second.port
        assert auth_code(first, smtp_user.access_key_id, smtp_user.password()) == 235
        password = smtp_user.password("eu-west-1")
        assert auth_code(second, smtp_user.access_key_id, password) == 235
    # THEN stopping leaves only the other server's thread; stop() twice is harmless
    assert len([t for t in threading.enumerate() if t.name == "ses-smtp"]) == 1
    second.stop()
    with pytest.raises(RuntimeError, match="already running"):
        first.start()


def test_command_line_runs_moto_and_smtp_until_sigterm(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a helper that sends SIGTERM once the SMTP thread is up (bounded: 10 s)
    def stop_when_up() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if any(t.name == "ses-smtp" for t in threading.enumerate()):
                time.sleep(0.1)
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.02)

    handler_before = signal.getsignal(signal.SIGTERM)
    killer = threading.Thread(target=stop_when_up)
    killer.start()
    # WHEN the entry point runs
    code = serve.main(["--region", "eu-west-1", "--implicit-tls"])
    killer.join(5)
    # THEN it printed where everything is, exited 0 and put the signal handlers back
    out = capsys.readouterr().out
    assert code == 0
    assert "AWS_ENDPOINT_URL=http://127.0.0.1:" in out
    assert "SMTP_TLS_PORT=" in out
    assert "SES_REGION=eu-west-1" in out
    assert signal.getsignal(signal.SIGTERM) is handler_before
