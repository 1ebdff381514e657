"""The demo's consumers of the secret: an app, a read-once daemon, a daemon kept by ``sync``.

The app uses the client helper (:class:`ses_smtp_rotator.client.SmtpSender`) with its own boto3
client, reaching moto through ``AWS_ENDPOINT_URL`` as a deployed app reaches AWS. Each message is
its own connection (as Django's SMTP backend does). It moves to a new key when its cache expires
(``max_age``: 1 s in the demo, shorter than the grace period) or, when the old key was retired
first, after a 535: each login refused is one line (``app: … refused (535)``) and one count, and
each move to another key one line saying which of the two it was. Nothing it reports contains a
secret.
"""

from __future__ import annotations

import json
import smtplib
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any, Self

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from sandbox.demo.background import JOIN_TIMEOUT, Background
from ses_smtp_rotator import _aws
from ses_smtp_rotator._sync import Sync
from ses_smtp_rotator.client import SmtpCredentials, SmtpSender, get_smtp_credentials
from ses_smtp_rotator.endpoints import TlsMode
from ses_smtp_rotator.exceptions import SesSmtpCredentialsError
from ses_smtp_rotator.smtp import authenticate, connect, quit_quietly

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from mypy_boto3_secretsmanager import SecretsManagerClient

SENDER = "app@example.com"
RECIPIENT = "ops@example.com"
_SMTP_TIMEOUT = 5.0
# Far longer than a demo runs: the app moves to a new key only through the 535 re-read.
_MAX_AGE = 3600
_STOP_TIMEOUT = 15.0
# What can go wrong in one send: network/SMTP (OSError), AWS, or a secret that does not parse.
_SEND_ERRORS = (OSError, BotoCoreError, ClientError, SesSmtpCredentialsError)
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
            timeout=_SMTP_TIMEOUT,
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
        except _SEND_ERRORS as err:
            self.stats.failed += 1
            line = f"app: send {number} FAILED: {_describe(err)}"
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


class ReadOnceApp(Consumer):
    """A daemon that reads the credentials once per start, and restarts every ``restart_every``.

    It has no ``535`` handling: a refused login is a failed send until its next start reads the
    secret again (a daemon without ``sync``, restarted by a timer or a deploy). A grace period
    longer than the gap between a rotation and its next start keeps it whole.
    """

    name = "read-once daemon"

    def __init__(
        self,
        *,
        secret_id: str,
        region: str,
        interval: float = 0.1,
        restart_every: float = 1.0,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(region=region, interval=interval, on_event=on_event)
        self.secret_id = secret_id
        self.restart_every = restart_every
        self._creds: SmtpCredentials | None = None
        self._started = 0.0

    def send_one(self) -> bool:
        """Send one message with the credentials of its last start; return whether it was sent."""
        number = self.stats.ok + self.stats.failed + 1
        try:
            if self._creds is None or self._should_reload():
                self._creds = self._load()
                self._started = time.monotonic()
            creds = self._creds
            smtp = connect(creds.host, creds.port, tls=creds.tls, timeout=_SMTP_TIMEOUT)
            try:
                authenticate(smtp, creds.username, creds.password, where=creds.host)
                smtp.sendmail(SENDER, [RECIPIENT], f"Subject: read-once {number}\r\n\r\nhi\r\n")
            finally:
                quit_quietly(smtp)
        except _SEND_ERRORS as err:
            self.stats.failed += 1
            line = f"{self.name}: send {number} FAILED: {_describe(err)}"
            if isinstance(err, smtplib.SMTPAuthenticationError) and self._creds is not None:
                self.stats.refused += 1
                line += f": its key {mask(self._creds.username)} {self.why_refused}"
            self.stats.errors.append(line)
            self._on_event(line)
            return False
        self.stats.ok += 1
        self.key_id = creds.username
        return True

    why_refused = "was retired before its next start read the secret again (no grace period left)"

    def _should_reload(self) -> bool:
        return time.monotonic() - self._started >= self.restart_every

    def _load(self) -> SmtpCredentials:
        return get_smtp_credentials(self.secret_id, client=self._sm, force_fetch=True)


class SyncedDaemon(ReadOnceApp):
    """A daemon that reads its credentials from a file ``sync`` keeps in step with the secret.

    ``ses-smtp-rotator sync`` runs in a loop (here every ``sync_every`` seconds, on a thread, as
    its systemd service would); the daemon reloads the file when it changes (Postfix does after
    ``postmap`` and ``postfix reload``, which ``--on-change`` runs). It never reads the secret.
    """

    name = "synced daemon"
    why_refused = "was retired before sync's next pass rewrote its file (no grace period left)"

    def __init__(  # noqa: PLR0913 - every option is keyword-only
        self,
        *,
        secret_id: str,
        region: str,
        path: Path,
        interval: float = 0.1,
        sync_every: float = 0.5,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(secret_id=secret_id, region=region, interval=interval, on_event=on_event)
        self.path = path
        self._sync = Sync(secret_id=secret_id, output=path, fmt="json", client=self._sm)
        self._sync_every = sync_every
        self._loaded_stamp: int | None = None
        self._syncer = threading.Thread(target=self._run_sync, name="demo-sync", daemon=True)

    def __enter__(self) -> Self:
        """Start ``sync`` and, once it wrote the file, the daemon."""
        self._syncer.start()
        deadline = time.monotonic() + JOIN_TIMEOUT
        while not self.path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return super().__enter__()

    def stop(self) -> None:
        """Stop the daemon and ``sync``."""
        super().stop()
        self._syncer.join(JOIN_TIMEOUT)

    def _run_sync(self) -> None:
        # sync's own progress lines (key ids masked) go to stderr, as under systemd
        self._sync.loop(self._sync_every, wait=self._stop.wait)

    def _should_reload(self) -> bool:
        return self.path.stat().st_mtime_ns != self._loaded_stamp

    def _load(self) -> SmtpCredentials:
        self._loaded_stamp = self.path.stat().st_mtime_ns
        value = json.loads(self.path.read_text(encoding="utf-8"))
        return SmtpCredentials(
            host=value["host"],
            port=int(value["port"]),
            username=value["username"],
            password=value["password"],
            region=value["region"],
            tls=TlsMode(value["tls_mode"]),
        )


def _describe(err: BaseException) -> str:
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
