"""The Django email backend: settings in, mail out through the local world, across rotations."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import django
import pytest
from django.conf import settings
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from sandbox import faults
from sandbox.calls import count_calls
from sandbox.faults import Fault, FaultKind
from ses_smtp_rotator import client as smtp_client
from ses_smtp_rotator import credentials
from ses_smtp_rotator.django import EmailBackend
from ses_smtp_rotator.exceptions import CredentialsNotReadyError, SecretUnavailableError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sandbox.world import World

BACKEND = "ses_smtp_rotator.django.EmailBackend"


@pytest.fixture(autouse=True)
def _django() -> Iterator[None]:
    if not settings.configured:
        settings.configure(EMAIL_BACKEND=BACKEND, DEFAULT_FROM_EMAIL="app@example.com")
        django.setup()
    smtp_client.clear_cache()
    yield
    smtp_client.clear_cache()


def logins(world: World) -> list[tuple[str, bool]]:
    return [(a.access_key_id, a.accepted) for a in world.ses.auth_attempts]


def test_send_mail_through_the_secret(world: World) -> None:
    # GIVEN a rotated secret named in Django's settings
    assert world.rotate().ok
    key = world.value()["username"]
    with override_settings(SES_SMTP_SECRET_ID=world.secret_arn):
        # WHEN the app sends with Django's API, one of them with a Bcc
        sent = mail.send_mail("Welcome", "Hello!", None, ["user@example.com"])
        bcc = mail.EmailMessage("Copy", "Hi", to=["a@example.com"], bcc=["audit@example.com"])
        bcc_sent = bcc.send()
    # THEN both were delivered with the secret's key, the Bcc in the envelope only
    assert (sent, bcc_sent) == (1, 1)
    first, second = world.ses.messages
    assert (first.sender, first.recipients, first.access_key_id) == (
        "app@example.com",
        ("user@example.com",),
        key,
    )
    assert b"Subject: Welcome" in first.data
    assert second.recipients == ("a@example.com", "audit@example.com")
    assert b"audit@example.com" not in second.data


def test_send_mail_across_a_rotation(world: World) -> None:
    # GIVEN an app that sent a mail (and cached the secret for 300 s), then a rotation
    assert world.rotate().ok
    old = world.value()["username"]
    before = len(world.ses.auth_attempts)
    with (
        override_settings(SES_SMTP_SECRET_ID=world.secret_arn, SES_SMTP_SECRET_MAX_AGE=300),
        count_calls(account_id=world.driver.account_id, region=world.region) as calls,
    ):
        assert mail.send_mail("before", "x", None, ["user@example.com"]) == 1
        assert world.rotate().ok
        reads_by_rotation = calls["SecretsManager.GetSecretValue"]
        # WHEN it sends three more, each send_mail on a new connection
        sent = [mail.send_mail(f"after {i}", "x", None, ["user@example.com"]) for i in range(3)]
    # THEN nothing was lost: the stale key got one 535, one fresh read fixed every later send
    new = world.value()["username"]
    assert sent == [1, 1, 1]
    assert len(world.ses.messages) == 4
    assert logins(world)[before:] == [
        (old, True),  # the first mail
        (new, True),  # the rotation's testSecret
        (old, False),  # the next mail, with the cached (now inactive) key
        (new, True),
        (new, True),
        (new, True),
    ]
    assert calls["SecretsManager.GetSecretValue"] - reads_by_rotation == 1


def test_one_connection_for_a_batch(world: World) -> None:
    # GIVEN a rotated secret
    assert world.rotate().ok
    before = len(world.ses.auth_attempts)
    with override_settings(SES_SMTP_SECRET_ID=world.secret_arn):
        # WHEN the app sends a batch on one connection
        messages = [
            ("one", "x", "app@example.com", ["a@example.com"]),
            ("two", "x", "app@example.com", ["b@example.com"]),
            ("none", "x", "app@example.com", []),
        ]
        sent = mail.send_mass_mail(messages)
        with mail.get_connection() as connection:
            assert connection.send_messages([]) == 0
    # THEN the two messages with recipients went through one login
    assert sent == 2
    assert len(world.ses.messages) == 2
    assert len(world.ses.auth_attempts) - before == 1


def test_fail_silently_and_errors(world: World) -> None:
    # GIVEN a secret that was never rotated
    with override_settings(SES_SMTP_SECRET_ID=world.secret_arn):
        # WHEN the app sends with and without fail_silently
        quiet = mail.send_mail("x", "x", None, ["user@example.com"], fail_silently=True)
        # THEN the first returns 0 and the second raises the clear error
        with pytest.raises(CredentialsNotReadyError, match="first rotation has not completed"):
            mail.send_mail("x", "x", None, ["user@example.com"])
    assert quiet == 0
    assert world.ses.messages == []


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        pytest.param({"SES_SMTP_SECRET_ID": None}, "SES_SMTP_SECRET_ID", id="no-secret-id"),
        pytest.param(
            {"SES_SMTP_SECRET_ID": "s", "SES_SMTP_SECRET_MAX_AGE": "soon"},
            "SES_SMTP_SECRET_MAX_AGE",
            id="max-age-not-a-number",
        ),
        pytest.param(
            {"SES_SMTP_SECRET_ID": "s", "SES_SMTP_SECRET_MAX_AGE": -5},
            "SES_SMTP_SECRET_MAX_AGE",
            id="max-age-negative",
        ),
        pytest.param(
            {"SES_SMTP_SECRET_ID": "s", "SES_SMTP_STALE_IF_ERROR": "an hour"},
            "SES_SMTP_STALE_IF_ERROR",
            id="stale-if-error-not-a-number",
        ),
        pytest.param(
            {"SES_SMTP_SECRET_ID": "s", "SES_SMTP_STALE_IF_ERROR": -1},
            "SES_SMTP_STALE_IF_ERROR",
            id="stale-if-error-negative",
        ),
    ],
)
def test_bad_settings_are_improperly_configured(overrides: dict[str, object], match: str) -> None:
    with override_settings(**overrides), pytest.raises(ImproperlyConfigured, match=match):
        mail.get_connection()


def test_explicit_options_beat_settings() -> None:
    with override_settings(
        SES_SMTP_SECRET_ID="from-settings",
        SES_SMTP_SECRET_MAX_AGE="60",
        SES_SMTP_STALE_IF_ERROR="600",
    ):
        default = EmailBackend()
        explicit = EmailBackend(secret_id="explicit", max_age=5, timeout=2.5, stale_if_error=7)
    assert (default.secret_id, default.max_age, default.stale_if_error) == (
        "from-settings",
        60,
        600.0,
    )
    assert (explicit.secret_id, explicit.max_age, explicit.timeout, explicit.stale_if_error) == (
        "explicit",
        5,
        2.5,
        7.0,
    )
    assert EmailBackend(secret_id="s").stale_if_error == 3600.0  # the default: one hour


def test_send_mail_rides_out_a_secrets_manager_outage(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN an app that sent a mail, with the secret cached for 1 s and the default stale bound
    assert world.rotate().ok
    key = world.value()["username"]
    with override_settings(SES_SMTP_SECRET_ID=world.secret_arn, SES_SMTP_SECRET_MAX_AGE=1):
        assert mail.send_mail("before", "x", None, ["user@example.com"]) == 1
        time.sleep(1.1)  # the cache expires
        # WHEN Secrets Manager cannot be read (the process's default client fails every call)
        default_client = credentials._provider(None).client
        outage = Fault(operation="GetSecretValue", kind=FaultKind.BEFORE, times=1_000)
        with faults.inject(default_client, outage):
            # THEN send_mail, each on a new connection, still sends with the last credentials
            sent = [mail.send_mail(f"during {i}", "x", None, ["u@example.com"]) for i in range(2)]
            # AND with stale-if-error turned off, the read's error is raised
            with (
                override_settings(SES_SMTP_STALE_IF_ERROR=0),
                pytest.raises(SecretUnavailableError),
            ):
                mail.send_mail("strict", "x", None, ["u@example.com"])
    assert sent == [1, 1]
    assert outage.seen >= 1
    assert {m.access_key_id for m in world.ses.messages} == {key}
    assert len(world.ses.messages) == 3
    warnings = [r for r in caplog.records if "stale-if-error" in r.getMessage()]
    assert [r.levelno for r in warnings] == [logging.WARNING]
