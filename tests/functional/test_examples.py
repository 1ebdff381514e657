"""The examples in ``examples/`` run against the local world, across a rotation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest

from examples import flask_app, smtplib_example
from ses_smtp_rotator import client as smtp_client
from ses_smtp_rotator.client import SmtpSender

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sandbox.world import World

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    smtp_client.clear_cache()
    yield
    smtp_client.clear_cache()


def test_smtplib_example_survives_a_rotation(
    world: World, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a rotated secret named in SES_SMTP_SECRET_ID
    assert world.rotate().ok
    old = world.value()["username"]
    monkeypatch.setenv("SES_SMTP_SECRET_ID", world.secret_arn)
    # WHEN the example sends, the secret rotates, and it sends again in the same process
    assert smtplib_example.main(["app@example.com", "user@example.com"]) == 0
    assert world.rotate().ok
    assert smtplib_example.main(["app@example.com", "user@example.com"]) == 0
    # THEN both went out: the second after one 535 with the cached key and one fresh read
    new = world.value()["username"]
    assert [m.access_key_id for m in world.ses.messages] == [old, new]
    # (smtplib.login tries PLAIN, then LOGIN: the stale key is refused once per mechanism)
    refused = {(a.access_key_id, a.reason) for a in world.ses.auth_attempts if not a.accepted}
    assert refused == {(old, "inactive")}
    assert capfd.readouterr().out.count("sent to user@example.com") == 2


def test_smtplib_example_usage(capfd: pytest.CaptureFixture[str]) -> None:
    assert smtplib_example.main([]) == 2
    assert "usage" in capfd.readouterr().err


def test_smtplib_example_before_the_first_rotation_says_why_in_one_line(
    world: World, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a secret that still holds its bootstrap value (never rotated)
    monkeypatch.setenv("SES_SMTP_SECRET_ID", world.secret_arn)
    # WHEN the example tries to send
    code = smtplib_example.main(["app@example.com", "user@example.com"])
    # THEN exit 1 with one line saying why and what to do, not a traceback
    err = capfd.readouterr().err
    assert code == 1
    assert err.startswith("not sent: ")
    assert err.count("\n") == 1
    assert "first rotation has not completed" in err
    assert world.ses.messages == []


def test_smtplib_example_as_a_script(make_world: Callable[..., World]) -> None:
    # GIVEN a world whose AWS is moto's server on 127.0.0.1, reachable from another process
    world = make_world(moto_server=True)
    assert world.rotate().ok
    # WHEN the example runs as a script with the world's environment
    env = {**os.environ, "SES_SMTP_SECRET_ID": world.secret_arn, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(  # noqa: S603 - our own interpreter and example, no shell
        [sys.executable, str(ROOT / "examples" / "smtplib_example.py"), "a@example.com", "b@x.io"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    # THEN it sent the mail and printed nothing secret
    assert done.returncode == 0, done.stderr
    assert done.stdout == "sent to b@x.io\n"
    assert [m.recipients for m in world.ses.messages] == [("b@x.io",)]
    assert not [m for m in world.secret_material() if m in done.stdout + done.stderr]


def test_flask_app_sends_across_a_rotation(world: World) -> None:
    # GIVEN the Flask app with its sender, and a rotated secret
    assert world.rotate().ok
    client = boto3.client("secretsmanager", region_name=world.region)
    with SmtpSender(world.secret_arn, client=client) as sender:
        app = flask_app.create_app(sender=sender).test_client()
        # WHEN requests send mail before and after a rotation
        replies = [app.post("/send", json={"to": "u@example.com", "subject": "one"}).status_code]
        assert world.rotate().ok
        replies.append(
            app.post("/send", json={"to": "u@example.com", "subject": "two"}).status_code
        )
        bad = app.post("/send", json={"subject": "no recipient"})
    # THEN both were accepted and delivered, and a request without a recipient is refused
    assert replies == [202, 202]
    assert len(world.ses.messages) == 2
    assert bad.status_code == 400
