"""The app-side client: credentials from the secret, a sender that survives every rotation."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from sandbox import faults
from sandbox.calls import count_calls
from sandbox.faults import Fault, FaultKind
from sandbox.secrets_manager import STEPS
from ses_smtp_rotator import client as smtp_client
from ses_smtp_rotator.client import SmtpSender, get_smtp_credentials
from ses_smtp_rotator.endpoints import TlsMode
from ses_smtp_rotator.exceptions import (
    CredentialsNotReadyError,
    CredentialsRejectedError,
    InvalidSecretError,
    SecretUnavailableError,
)

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Callable, Iterator

    from mypy_boto3_secretsmanager import SecretsManagerClient

    from sandbox.ses_smtp import SesSmtpServer
    from sandbox.world import World

GET_SECRET_VALUE = "SecretsManager.GetSecretValue"


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    # Each test is a new process as far as the credentials cache is concerned.
    smtp_client.clear_cache()
    yield
    smtp_client.clear_cache()


def app_client(world: World) -> SecretsManagerClient:
    """The app's own Secrets Manager client (default chain: the world's environment)."""
    return boto3.client("secretsmanager", region_name=world.region)


def message(subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "app@example.com"
    msg["To"] = "user@example.com"
    msg["Subject"] = subject
    msg.set_content(f"body of {subject}")
    return msg


def delivered_subjects(ses: SesSmtpServer) -> list[str]:
    return [
        line.split(":", 1)[1].strip()
        for m in ses.messages
        for line in m.data.decode().splitlines()
        if line.startswith("Subject:")
    ]


def drop_connections(ses: SesSmtpServer) -> None:
    """Make the server close every open connection at once, as SES does to idle ones."""

    async def abort_all() -> None:
        for connection in list(ses._connections):
            connection.abort()
        await asyncio.sleep(0)

    assert ses._loop is not None
    asyncio.run_coroutine_threadsafe(abort_all(), ses._loop).result(timeout=5)


def put_current(world: World, **changes: Any) -> None:  # noqa: ANN401 - JSON values
    """Write a new AWSCURRENT by hand (as an operator would), changing some fields."""
    put_current_text(world, json.dumps(world.value() | changes))


def put_current_text(world: World, text: str) -> None:
    # Put under a label of its own, then move AWSCURRENT explicitly: what the console does.
    current = next(v for v, s in world.driver.stages().items() if "AWSCURRENT" in s)
    new = world.sm.put_secret_value(
        SecretId=world.secret_arn, SecretString=text, VersionStages=["HAND"]
    )["VersionId"]
    world.sm.update_secret_version_stage(
        SecretId=world.secret_arn,
        VersionStage="AWSCURRENT",
        MoveToVersionId=new,
        RemoveFromVersionId=current,
    )


@pytest.mark.parametrize(
    "tls",
    [
        pytest.param(TlsMode.STARTTLS, id="starttls-587-style"),
        pytest.param(TlsMode.IMPLICIT, id="implicit-tls-465-style"),
    ],
)
def test_credentials_and_a_send(make_world: Callable[..., World], tls: TlsMode) -> None:
    # GIVEN a rotated secret whose endpoint uses STARTTLS or implicit TLS
    world = make_world(implicit_tls=tls is TlsMode.IMPLICIT)
    assert world.rotate().ok
    # WHEN an app reads the credentials and sends a message
    creds = get_smtp_credentials(world.secret_arn, client=app_client(world))
    with SmtpSender(world.secret_arn, client=app_client(world)) as sender:
        sender.send(message("hello"))
    # THEN the credentials are the secret's, and the repr never shows the password
    value = world.value()
    assert (creds.host, creds.username, creds.region, creds.tls) == (
        "localhost",
        value["username"],
        world.region,
        tls,
    )
    assert creds.password == value["password"]
    assert value["password"] not in repr(creds)
    assert value["password"] not in str(creds)
    assert "SmtpSender" in repr(sender)
    assert delivered_subjects(world.ses) == ["hello"]
    assert world.ses.messages[0].access_key_id == value["username"]


def test_sending_across_rotations_loses_no_message(world: World) -> None:
    # GIVEN a first key and an app with a long-lived sender and the default 300 s cache
    assert world.rotate().ok
    keys = [world.value()["username"]]
    client = app_client(world)
    subjects: list[str] = []
    with SmtpSender(world.secret_arn, client=client) as long_lived:
        long_lived.send(message("before"))
        subjects.append("before")
        for rotation in range(3):
            token = world.driver.start()
            for step in STEPS:
                # WHEN each rotation step runs (OLD_KEY_ACTION=deactivate) ...
                assert world.driver.invoke(step, token).ok
                # ... and between steps the long-lived connection sends, and so does a fresh
                # connection (a worker that starts now) that still holds the cached, old key
                for name, sender in (("long", long_lived), ("fresh", None)):
                    subject = f"r{rotation}-{step}-{name}"
                    if sender is None:
                        with SmtpSender(world.secret_arn, client=client) as fresh:
                            fresh.send(message(subject))
                    else:
                        sender.send(message(subject))
                    subjects.append(subject)
            keys.append(world.value()["username"])
            # AND the server drops the long-lived connection now and then
            drop_connections(world.ses)
    # THEN every message was delivered, in order
    assert delivered_subjects(world.ses) == subjects
    # AND the window right after finishSecret was hit: the old, deactivated key got 535 once per
    # rotation and the new key was used at once
    refused = [a for a in world.ses.auth_attempts if not a.accepted]
    assert [(a.access_key_id, a.reason) for a in refused] == [
        (key, "inactive") for key in keys[:-1]
    ]
    # AND the fresh connection used the new key right after finishSecret, and the long-lived one
    # followed at its next send (the 535 refresh refilled the cache it shares)
    keys_used = (m.access_key_id for m in world.ses.messages)
    key_of = dict(zip(delivered_subjects(world.ses), keys_used, strict=True))
    assert [key_of[f"r{r}-finishSecret-fresh"] for r in range(3)] == keys[1:]
    assert [key_of[f"r{r}-createSecret-long"] for r in range(1, 3)] == keys[1:-1]


def test_get_secret_value_once_per_cache_period(world: World) -> None:
    # GIVEN a rotated secret and an app caching it for 1 s
    assert world.rotate().ok
    client = app_client(world)
    logins = len(world.ses.auth_attempts)  # the rotation's own test login
    # WHEN it sends 5 messages, waits for the cache to expire, and sends 5 more
    with (
        count_calls(account_id=world.driver.account_id, region=world.region) as calls,
        SmtpSender(world.secret_arn, client=client, max_age=1) as sender,
    ):
        for period in range(2):
            started = time.monotonic()
            for i in range(5):
                sender.send(message(f"p{period}-{i}"))
            assert time.monotonic() - started < 1.0, "the period must fit in the cache age"
            time.sleep(1.1)
    # THEN Secrets Manager was read once per cache period, and all 10 went through one login
    assert calls[GET_SECRET_VALUE] == 2
    assert len(world.ses.messages) == 10
    assert len(world.ses.auth_attempts) == logins + 1


def test_get_secret_value_once_more_per_refresh_after_535(world: World) -> None:
    # GIVEN an app that cached the first key, and a rotation after that
    assert world.rotate().ok
    client = app_client(world)
    old = get_smtp_credentials(world.secret_arn, client=client)
    assert world.rotate().ok
    new_key = world.value()["username"]
    # WHEN it sends 5 messages with its stale cache (300 s)
    with (
        count_calls(account_id=world.driver.account_id, region=world.region) as calls,
        SmtpSender(world.secret_arn, client=client) as sender,
    ):
        for i in range(5):
            sender.send(message(f"m{i}"))
    # THEN one 535 led to exactly one more GetSecretValue, and everything went with the new key
    assert calls[GET_SECRET_VALUE] == 1
    assert [(a.access_key_id, a.accepted) for a in world.ses.auth_attempts[-2:]] == [
        (old.username, False),
        (new_key, True),
    ]
    assert {m.access_key_id for m in world.ses.messages} == {new_key}
    assert len(world.ses.messages) == 5
    # AND the refresh refilled the shared cache: the next reader does not call again
    with count_calls(account_id=world.driver.account_id, region=world.region) as calls:
        assert get_smtp_credentials(world.secret_arn, client=client).username == new_key
    assert calls[GET_SECRET_VALUE] == 0


def test_a_dropped_connection_is_reopened(world: World) -> None:
    # GIVEN a sender with an open, authenticated connection
    assert world.rotate().ok
    logins = len(world.ses.auth_attempts)
    with SmtpSender(world.secret_arn, client=app_client(world)) as sender:
        sender.send(message("one"))
        # WHEN the server drops it and the app sends again
        drop_connections(world.ses)
        sender.send(message("two"))
    # THEN the message went through a new login, transparently
    assert delivered_subjects(world.ses) == ["one", "two"]
    assert [a.accepted for a in world.ses.auth_attempts[logins:]] == [True, True]


def _raw_key_as_password(world: World, _client: SecretsManagerClient) -> None:
    put_current(world, password=world.value()["secret_access_key"])


def _refresh_finds_bad_credentials(world: World, client: SecretsManagerClient) -> None:
    # The app cached the good key; then someone deactivated it and wrote the raw key by hand.
    get_smtp_credentials(world.secret_arn, client=client)
    key = world.value()["username"]
    world.iam.update_access_key(UserName=world.user_name, AccessKeyId=key, Status="Inactive")
    _raw_key_as_password(world, client)


@pytest.mark.parametrize(
    ("damage", "logins"),
    [
        pytest.param(_raw_key_as_password, 1, id="same-credentials-after-refresh"),
        pytest.param(_refresh_finds_bad_credentials, 2, id="refreshed-credentials-refused"),
    ],
)
def test_second_535_names_the_likely_cause(
    world: World, damage: Callable[[World, SecretsManagerClient], None], logins: int
) -> None:
    # GIVEN a secret whose current credentials cannot log in (the raw secret key as password)
    assert world.rotate().ok
    client = app_client(world)
    damage(world, client)
    before = len(world.ses.auth_attempts)
    # WHEN an app sends
    with (
        SmtpSender(world.secret_arn, client=client) as sender,
        pytest.raises(CredentialsRejectedError) as caught,
    ):
        sender.send(message("lost"))
    # THEN it tried once more only if the secret changed, and the error says what is wrong
    assert len(world.ses.auth_attempts) - before == logins
    text = str(caught.value)
    assert "raw-secret-key" in text
    assert world.secret_arn in text
    assert not [m for m in world.secret_material() if m in text]
    assert world.ses.messages == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"port": "not-a-port"}, "port", id="port"),
        pytest.param({"password": None}, "password", id="password-missing"),
        pytest.param({"tls_mode": "ssl3"}, "tls_mode", id="tls-mode"),
        pytest.param({"iam_user_name": None}, "iam_user_name", id="user-name"),
    ],
)
def test_bad_secret_contents_name_the_secret_and_field(
    world: World, changes: dict[str, Any], field: str
) -> None:
    # GIVEN a rotated secret damaged by hand
    assert world.rotate().ok
    put_current(world, **changes)
    # WHEN an app reads it
    with pytest.raises(InvalidSecretError) as caught:
        get_smtp_credentials(world.secret_arn, client=app_client(world))
    # THEN the error names the secret and the field, and shows no value
    assert caught.value.field == field
    assert caught.value.secret_id == world.secret_arn
    assert f"'{field}'" in str(caught.value)
    assert world.secret_arn in str(caught.value)
    assert not [m for m in world.secret_material() if m in str(caught.value)]


def test_invalid_json_names_the_secret(world: World) -> None:
    put_current_text(world, '{"password": "x"')
    with pytest.raises(InvalidSecretError, match="not valid JSON") as caught:
        get_smtp_credentials(world.secret_arn, client=app_client(world))
    assert world.secret_arn in str(caught.value)


def test_bootstrap_value_says_the_first_rotation_has_not_completed(world: World) -> None:
    # GIVEN a secret that was deployed but never rotated
    # WHEN an app reads it
    with pytest.raises(CredentialsNotReadyError, match="first rotation has not completed"):
        get_smtp_credentials(world.secret_arn, client=app_client(world))


def test_missing_secret_names_it_and_the_aws_error(world: World) -> None:
    with pytest.raises(SecretUnavailableError) as caught:
        get_smtp_credentials("no-such-secret", client=app_client(world))
    assert "no-such-secret" in str(caught.value)
    assert "ResourceNotFoundException" in str(caught.value)


def test_default_client_comes_from_the_environment(world: World) -> None:
    # GIVEN only the default AWS chain (the world's region and fake credentials)
    assert world.rotate().ok
    # WHEN the app gives no client
    creds = get_smtp_credentials(world.secret_arn)
    # THEN one is built from the chain and reused by the next call (same cache)
    assert creds.username == world.value()["username"]
    with count_calls(account_id=world.driver.account_id, region=world.region) as calls:
        get_smtp_credentials(world.secret_arn)
    assert calls[GET_SECRET_VALUE] == 0


# --- stale-if-error: an outage of Secrets Manager does not stop mail --------------------------

STALE_WARNING = "stale-if-error"


def secrets_manager_down(client: SecretsManagerClient) -> contextlib.AbstractContextManager[Fault]:
    """Every GetSecretValue of ``client`` fails before it reaches the service (an outage)."""
    return faults.inject(
        client, Fault(operation="GetSecretValue", kind=FaultKind.BEFORE, times=1_000)
    )


def stale_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if STALE_WARNING in r.getMessage()]


def test_stale_if_error_keeps_sending_while_the_secret_cannot_be_read(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN an app that sent with the secret's credentials, cached for 1 s
    assert world.rotate().ok
    key = world.value()["username"]
    client = app_client(world)
    with SmtpSender(world.secret_arn, client=client, max_age=1) as sender:
        sender.send(message("before"))
        time.sleep(1.1)  # the cache expires
        # WHEN Secrets Manager cannot be read and the app sends three more
        with secrets_manager_down(client) as outage:
            started = time.monotonic()
            for i in range(3):
                sender.send(message(f"during {i}"))
            assert time.monotonic() - started < 1.0, "the sends must fit in one retry interval"
    # THEN every message went out with the last credentials read, on the one connection
    assert delivered_subjects(world.ses) == ["before", "during 0", "during 1", "during 2"]
    assert {m.access_key_id for m in world.ses.messages} == {key}
    # AND the secret was tried once (not at every send), with one warning naming no secret
    assert outage.seen == 1
    (warning,) = stale_warnings(caplog)
    assert warning.levelno == logging.WARNING
    assert world.secret_arn in warning.getMessage()
    assert not [m for m in world.secret_material() if m in warning.getMessage()]


def test_stale_if_error_runs_out_then_the_read_error_is_raised(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN an app whose stale-if-error bound is 1 s, and an outage after its cache expired
    assert world.rotate().ok
    client = app_client(world)
    with SmtpSender(world.secret_arn, client=client, max_age=0, stale_if_error=1) as sender:
        sender.send(message("before"))
        with secrets_manager_down(client):
            sender.send(message("stale"))
            # WHEN the bound passes and the outage goes on
            time.sleep(1.1)
            # THEN the next send fails with the read's error, and no mail is sent stale
            with pytest.raises(SecretUnavailableError, match=world.secret_arn):
                sender.send(message("too late"))
        # AND once Secrets Manager answers again, sending resumes
        sender.send(message("after"))
    assert delivered_subjects(world.ses) == ["before", "stale", "after"]
    assert len(stale_warnings(caplog)) == 1


def test_stale_if_error_zero_fails_at_once(world: World) -> None:
    assert world.rotate().ok
    client = app_client(world)
    with SmtpSender(world.secret_arn, client=client, max_age=0, stale_if_error=0) as sender:
        sender.send(message("before"))
        with secrets_manager_down(client), pytest.raises(SecretUnavailableError):
            sender.send(message("during"))
    assert delivered_subjects(world.ses) == ["before"]


def test_535_during_an_outage_is_not_answered_with_stale_credentials(
    make_world: Callable[..., World], caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN an app holding a key that a rotation has since deleted (OLD_KEY_ACTION=delete)
    world = make_world(function_env={"OLD_KEY_ACTION": "delete"})
    assert world.rotate().ok
    client = app_client(world)
    with SmtpSender(world.secret_arn, client=client, max_age=0) as sender:
        sender.send(message("before"))
        sender.close()
        assert world.rotate().ok
        # WHEN Secrets Manager is down and the app logs in again with its stale key
        with secrets_manager_down(client) as outage, pytest.raises(SecretUnavailableError):
            sender.send(message("during"))
    # THEN the 535 forced a read (which failed): stale credentials were never used for it
    assert outage.seen == 2  # the expired cache, then the forced read after the 535
    assert world.ses.auth_attempts[-1].accepted is False
    assert delivered_subjects(world.ses) == ["before"]
    assert len(stale_warnings(caplog)) == 1


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), True, "3600"])
def test_stale_if_error_must_be_a_number_of_seconds(bad: object) -> None:
    with pytest.raises(ValueError, match="stale_if_error"):
        SmtpSender("s", stale_if_error=bad)  # type: ignore[arg-type]


def test_stale_if_error_takes_a_timedelta() -> None:
    assert SmtpSender("s", stale_if_error=timedelta(minutes=5)).stale_if_error == 300.0
