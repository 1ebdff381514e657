"""The demo's daemons: one that reads the secret once per start, one whose file ``sync`` keeps.

Neither handles a ``535`` as the app does (:mod:`sandbox.demo.app`): a refused login is a failed
send until the daemon's next start, or ``sync``'s next pass, reads the secret again. Nothing they
report contains a secret.
"""

from __future__ import annotations

import json
import smtplib
import threading
import time
from typing import TYPE_CHECKING, Self

from sandbox.demo.app import RECIPIENT, SEND_ERRORS, SENDER, SMTP_TIMEOUT, Consumer, describe, mask
from sandbox.demo.background import JOIN_TIMEOUT
from ses_smtp_rotator._sync import Sync
from ses_smtp_rotator.client import SmtpCredentials, get_smtp_credentials
from ses_smtp_rotator.endpoints import TlsMode
from ses_smtp_rotator.smtp import authenticate, connect, quit_quietly

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


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
            smtp = connect(creds.host, creds.port, tls=creds.tls, timeout=SMTP_TIMEOUT)
            try:
                authenticate(smtp, creds.username, creds.password, where=creds.host)
                smtp.sendmail(SENDER, [RECIPIENT], f"Subject: read-once {number}\r\n\r\nhi\r\n")
            finally:
                quit_quietly(smtp)
        except SEND_ERRORS as err:
            self.stats.failed += 1
            line = f"{self.name}: send {number} FAILED: {describe(err)}"
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
