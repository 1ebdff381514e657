"""No logging setting makes the AWS SDK write request or response bodies (secrets) to the logs.

Lambda's logging controls (JSON format, application log level DEBUG) put the root logger at DEBUG;
botocore then logs every request's parameters and every answer's body at DEBUG: the answer of
CreateAccessKey holds the secret access key, PutSecretValue's parameters the passwords, and
GetSecretValue's answer (the apps' client) the whole secret.
"""

from __future__ import annotations

import logging
from email.message import EmailMessage
from typing import TYPE_CHECKING

import boto3
import pytest

from ses_smtp_rotator import client as smtp_client
from ses_smtp_rotator.client import SmtpSender
from tests import leakscan

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sandbox.world import World

SDK_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")
_PROBE = "debug records reach the capture"


@pytest.fixture
def lambda_debug_logging(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> Iterator[pytest.LogCaptureFixture]:
    """What Lambda's logging controls do with application log level DEBUG and JSON format."""
    monkeypatch.setenv("AWS_LAMBDA_LOG_FORMAT", "JSON")
    monkeypatch.setenv("AWS_LAMBDA_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    caplog.set_level(logging.DEBUG)  # the root logger and the capturing handler
    smtp_client.clear_cache()
    yield caplog
    smtp_client.clear_cache()


def captured_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured record, message and arguments rendered, with any exception text."""
    return "\n".join(
        f"{record.name} {record.getMessage()} {record.exc_text or ''}" for record in caplog.records
    )


def assert_capture_works(caplog: pytest.LogCaptureFixture) -> None:
    logging.getLogger("app").debug(_PROBE)
    assert _PROBE in captured_text(caplog)


def message(subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "app@example.com"
    msg["To"] = "user@example.com"
    msg["Subject"] = subject
    msg.set_content(subject)
    return msg


def test_rotation_with_root_logger_at_debug_logs_no_secret(
    world: World, lambda_debug_logging: pytest.LogCaptureFixture
) -> None:
    # GIVEN the root logger at DEBUG with a handler capturing every record
    caplog = lambda_debug_logging
    assert_capture_works(caplog)
    # WHEN two rotations run (bootstrap, then one that replaces the key)
    assert world.rotate().ok
    assert world.rotate().ok
    # THEN no secret access key, SMTP password or secret string is in any record
    material = world.secret_material() | leakscan.harvest()
    assert material, "the world holds secrets to look for"
    assert leakscan.find_leaks([captured_text(caplog)], material) == []


def test_sdk_loggers_set_to_debug_by_hand_still_log_no_secret(
    world: World, lambda_debug_logging: pytest.LogCaptureFixture
) -> None:
    # GIVEN the SDK's loggers (and a child) explicitly at DEBUG after the function was loaded
    caplog = lambda_debug_logging
    assert world.rotate().ok
    for name in (*SDK_LOGGERS, "botocore.parsers", "botocore.endpoint"):
        caplog.set_level(logging.DEBUG, logger=name)
    assert_capture_works(caplog)
    # WHEN the next rotation runs
    assert world.rotate().ok
    # THEN no secret reaches the records
    material = world.secret_material() | leakscan.harvest()
    assert leakscan.find_leaks([captured_text(caplog)], material) == []
    # AND the SDK's warnings still do
    logging.getLogger("botocore.parsers").warning("sdk warning probe")
    assert "sdk warning probe" in captured_text(caplog)


def test_app_client_with_root_logger_at_debug_logs_no_secret(
    world: World, lambda_debug_logging: pytest.LogCaptureFixture
) -> None:
    # GIVEN a rotated secret and an app whose root logger is at DEBUG
    caplog = lambda_debug_logging
    assert world.rotate().ok
    caplog.clear()
    assert_capture_works(caplog)
    # WHEN the app reads the secret and sends
    with SmtpSender(
        world.secret_arn, client=boto3.client("secretsmanager", region_name=world.region)
    ) as sender:
        sender.send(message("hello"))
    # THEN the GetSecretValue answer (password, secret key, whole value) is in no record
    material = world.secret_material() | leakscan.harvest()
    assert leakscan.find_leaks([captured_text(caplog)], material) == []
    assert len(world.ses.messages) == 1
