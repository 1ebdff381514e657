"""The demo's app, and what every consumer of the secret shares (the daemons are in ``daemons``).

The app uses the client helper (:class:`ses_smtp_rotator.client.SmtpSender`) with its own boto3
client, reaching moto through ``AWS_ENDPOINT_URL`` as a deployed app reaches AWS. Each message is
its own connection (as Django's SMTP backend does). It moves to a new key when its cache expires
(``max_age``: 1 s in the demo, shorter than the grace period) or, when the old key was retired
first, after a 535: each login refused is one line (``app: … refused (535)``) and one count, and
each move to another key one line saying which of the two it was. Nothing it reports contains a
secret.
"""

from __future__ import annotations

import smtplib
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from sandbox.demo.background import Background
from ses_smtp_rotator import _aws
from ses_smtp_rotator.client import SmtpCredentials, SmtpSender, get_smtp_credentials
from ses_smtp_rotator.exceptions import SesSmtpCredentialsError

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_secretsmanager import SecretsManagerClient

SENDER = "app@example.com"
RECIPIENT = "ops@example.com"
SMTP_TIMEOUT = 5.0
# Far longer than a demo runs: the app moves to a new key only through the 535 re-read.
_MAX_AGE = 3600
_STOP_TIMEOUT = 15.0
# What can go wrong in one send: network/SMTP (OSError), AWS, or a secret that does not parse.
SEND_ERRORS = (OSError, BotoCoreError, ClientError, SesSmtpCredentialsError)
_CODE_INVALID = 535


def mask(key_id: str | None) -> str:
    """Show an access key id the way the demo prints it: ``AKIA…7XQ2``."""
    if not key_id:
        return "(none)"
    return f"{key_id[:4]}…{key_id[-4:]}"


@dataclass
class SendStats:
    """What a consumer saw so far: each count is of the lines it printed (or would print)."""

    ok: int = 0
    failed: int = 0
    rereads: int = 0  # moves to another key: after a 535, or when its cache expired
    refused: int = 0  # logins refused (535) with the credentials it held: one line each
    errors: list[str] = field(default_factory=list)


class _ObservedSender(SmtpSender):
    """The client helper's sender, telling each login SES refused with 535 as it happens."""

    def __init__(self, *args: Any, on_refused: Callable[[str], None], **kwargs: Any) -> None:  # noqa: ANN401 - SmtpSender's
        super().__init__(*args, **kwargs)
        self._on_refused = on_refused

    def _open(self, credentials: SmtpCredentials) -> None:
        try:
            super()._open(credentials)
        except smtplib.SMTPAuthenticationError as err:
            if err.smtp_code == _CODE_INVALID:
                self._on_refused(credentials.username)
            raise


class Consumer(Background):
    """A consumer of the secret sending on its own thread every ``interval`` seconds."""

    name = "consumer"

    def __init__(
        self, *, region: str, interval: float, on_event: Callable[[str], None] | None
    ) -> None:
        super().__init__(self.name)
        self.interval = interval
        self.stats = SendStats()
        self.key_id: str | None = None
        self._on_event = on_event or (lambda _line: None)
        self._sm: SecretsManagerClient = boto3.session.Session(region_name=region).client(
            "secretsmanager"
        )

    def run(self) -> None:
        """Send, then wait ``interval``, until stopped."""
        while not self._stop.is_set():
            self.send_one()
            self._stop.wait(self.interval)

    def send_one(self) -> bool:
        """Send one message; return whether it was sent."""
        raise NotImplementedError


class MailApp(Consumer):
    """Send a message every ``interval`` seconds on a thread, with credentials from the secret.

    It reads through the client helper, cached ``max_age`` seconds, and re-reads after a ``535``.

    Parameters
    ----------
    secret_id
        The secret to read (AWSCURRENT).
    region
        Region of its own Secrets Manager client.
    interval
        Seconds between two sends.
    on_event
        Called with a line worth showing (a re-read after 535, a failed send); never a secret.
    """

    name = "app"

    def __init__(
        self,
        *,
        secret_id: str,
        region: str,
        interval: float = 0.1,
        max_age: int = _MAX_AGE,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(region=region, interval=interval, on_event=on_event)
        self.secret_id = secret_id
        self.max_age = max_age
        self._sender = _ObservedSender(
            secret_id,
            max_age=max_age,
            client=self._sm,
            timeout=SMTP_TIMEOUT,
            on_refused=self._refused,
        )

    def _refused(self, key_id: str) -> None:
        """One login of the sender refused (535): counted and shown, one line each."""
        self.stats.refused += 1
        self._on_event(f"app: {mask(key_id)} refused (535) → re-read the secret")

    def stop(self) -> None:
        """Stop sending, wait (bounded) for the thread to end, close the connection."""
        super().stop()
        self._sender.close()

    def send_one(self) -> bool:
        """Send one message on its own connection; return whether it was sent."""
        number = self.stats.ok + self.stats.failed + 1
        refused_before = self.stats.refused
        message = EmailMessage()
        message["From"], message["To"] = SENDER, RECIPIENT
        message["Subject"] = f"demo message {number}"
        message.set_content(f"Message {number}, sent while the credentials rotate.\n")
        try:
            # The credentials the sender logs in with (the client helper's cache, shared).
            before = get_smtp_credentials(self.secret_id, max_age=self.max_age, client=self._sm)
            try:
                self._sender.send(message)
            finally:
                self._sender.close()
            creds = get_smtp_credentials(self.secret_id, max_age=self.max_age, client=self._sm)
        except SEND_ERRORS as err:
            self.stats.failed += 1
            line = f"app: send {number} FAILED: {describe(err)}"
            self.stats.errors.append(line)
            self._on_event(line)
            return False
        self.stats.ok += 1
        held = self.key_id or before.username
        if creds.username != held:  # after a 535 (shown as it happened), or its cache expired
            self.stats.rereads += 1
            self._on_event(
                f"app: moved from {mask(held)} to {mask(creds.username)} "
                f"({self._why_moved(after_535=self.stats.refused > refused_before)})"
            )
        self.key_id = creds.username
        return True

    def _why_moved(self, *, after_535: bool) -> str:
        if after_535:
            return "the secret re-read after the 535 above"
        return f"its cache of the secret, {self.max_age:g} s, expired"


def describe(err: BaseException) -> str:
    """Say what failed without echoing server replies or values (they may carry secrets)."""
    if isinstance(err, smtplib.SMTPResponseException):
        return f"SMTP {err.smtp_code} ({type(err).__name__})"
    if isinstance(err, ClientError):
        return f"AWS {_aws.error_code(err)}"
    if isinstance(err, SesSmtpCredentialsError):
        return str(err)
    return type(err).__name__


def wait_for_first_send(app: MailApp, *, timeout: float) -> bool:
    """Wait (bounded) until the app has sent one message."""
    deadline = time.monotonic() + timeout
    while app.stats.ok == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    return app.stats.ok > 0
