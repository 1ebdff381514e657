"""The demo's mail-sending app: reads the secret like a real app and sends every ~100 ms.

It holds its own boto3 client (reaching moto through ``AWS_ENDPOINT_URL``, as a deployed app
reaches AWS), caches the credentials it read, and on a 535 re-reads the secret once and retries:
with ``OLD_KEY_ACTION=deactivate`` the cached password of the old key stops working at
finishSecret, and the re-read finds the new AWSCURRENT. Nothing it reports contains a secret.
"""

from __future__ import annotations

import smtplib
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import TYPE_CHECKING, Self

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from ses_smtp_credentials import smtp
from ses_smtp_credentials.exceptions import SesSmtpCredentialsError
from ses_smtp_credentials.secret import SmtpSecret, parse_secret

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from mypy_boto3_secretsmanager import SecretsManagerClient

SENDER = "app@example.com"
RECIPIENT = "ops@example.com"
_SMTP_TIMEOUT = 5.0
_STOP_TIMEOUT = 15.0
# What can go wrong in one send: network/SMTP (OSError), AWS, or a secret that does not parse.
_SEND_ERRORS = (OSError, BotoCoreError, ClientError, SesSmtpCredentialsError)


def mask(key_id: str | None) -> str:
    """Show an access key id the way the demo prints it: ``AKIA…7XQ2``."""
    if not key_id:
        return "(none)"
    return f"{key_id[:4]}…{key_id[-4:]}"


@dataclass
class SendStats:
    """What the app saw so far."""

    ok: int = 0
    failed: int = 0
    rereads: int = 0
    logins: int = 0
    errors: list[str] = field(default_factory=list)


class MailApp:
    """Send a message every ``interval`` seconds on a thread, with credentials from the secret.

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

    def __init__(
        self,
        *,
        secret_id: str,
        region: str,
        interval: float = 0.1,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.secret_id = secret_id
        self.interval = interval
        self.stats = SendStats()
        self._on_event = on_event or (lambda _line: None)
        self._sm: SecretsManagerClient = boto3.session.Session(region_name=region).client(
            "secretsmanager"
        )
        self._cached: SmtpSecret | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-app", daemon=True)

    def __enter__(self) -> Self:
        """Start sending."""
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop sending."""
        self.stop()

    def stop(self) -> None:
        """Stop sending and wait (bounded) for the thread to end."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(_STOP_TIMEOUT)

    @property
    def key_id(self) -> str | None:
        """The access key id of the cached credentials."""
        return self._cached.access_key_id if self._cached else None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.send_one()
            self._stop.wait(self.interval)

    def send_one(self) -> bool:
        """Send one message; on a 535 re-read the secret once and retry. Return success."""
        number = self.stats.ok + self.stats.failed + 1
        message = EmailMessage()
        message["From"], message["To"] = SENDER, RECIPIENT
        message["Subject"] = f"demo message {number}"
        message.set_content(f"Message {number}, sent while the credentials rotate.\n")
        try:
            try:
                self._send(message, fresh=self._cached is None)
            except smtplib.SMTPAuthenticationError as err:
                old = self.key_id
                self.stats.rereads += 1
                self._send(message, fresh=True)
                self._on_event(
                    f"app: {err.smtp_code} for {mask(old)} → re-read the secret → "
                    f"sent with {mask(self.key_id)}"
                )
        except _SEND_ERRORS as err:
            self.stats.failed += 1
            line = f"app: send {number} FAILED: {_describe(err)}"
            self.stats.errors.append(line)
            self._on_event(line)
            return False
        self.stats.ok += 1
        return True

    def _send(self, message: EmailMessage, *, fresh: bool) -> None:
        if fresh or self._cached is None:
            self._cached = self._read_secret()
        creds = self._cached
        if not creds.has_credentials:
            msg = "the secret has no credentials yet (no rotation completed)"
            raise SesSmtpCredentialsError(msg)
        connection = smtp.connect(creds.host, creds.port, tls=creds.tls, timeout=_SMTP_TIMEOUT)
        try:
            self.stats.logins += 1
            connection.login(str(creds.access_key_id), str(creds.password))
            connection.send_message(message)
        finally:
            connection.close()

    def _read_secret(self) -> SmtpSecret:
        text = self._sm.get_secret_value(SecretId=self.secret_id, VersionStage="AWSCURRENT")
        return parse_secret(text["SecretString"], secret_id=self.secret_id)


def _describe(err: BaseException) -> str:
    """Say what failed without echoing server replies or values (they may carry secrets)."""
    if isinstance(err, smtplib.SMTPResponseException):
        return f"SMTP {err.smtp_code} ({type(err).__name__})"
    if isinstance(err, ClientError):
        return f"AWS {err.response.get('Error', {}).get('Code', 'error')}"
    if isinstance(err, SesSmtpCredentialsError):
        return str(err)
    return type(err).__name__


def wait_for_first_send(app: MailApp, *, timeout: float) -> bool:
    """Wait (bounded) until the app has sent one message."""
    deadline = time.monotonic() + timeout
    while app.stats.ok == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    return app.stats.ok > 0
