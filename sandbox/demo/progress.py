"""What the demo shows while it runs: each step, the SMTP test's AUTH attempts, the app's sends.

Everything is a line printed with rich (plain text when stdout is not a terminal); a terminal
also gets one live status line (the app's counters, the running step) that redraws in place.
Key ids are masked; no secret ever reaches the console.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.text import Text

from sandbox.demo.app import mask
from sandbox.demo.background import Background
from sandbox.secrets_manager import PENDING

if TYPE_CHECKING:
    from rich.console import Console

    from sandbox.demo.app import MailApp
    from sandbox.secrets_manager import StepRecord
    from sandbox.world import World

_POLL = 0.05
_REASONS = {
    "ok": "235 accepted",
    "propagating": "535 refused: the new key has not reached SES yet",
    "inactive": "535 refused: key inactive",
    "bad-password": "535 refused: wrong password",
    "unknown-key": "535 refused: unknown key",
}


@dataclass
class StepTimes:
    """Durations of every step invocation, by step name."""

    seconds: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def median(self, step: str) -> float | None:
        """Median duration of ``step``, or ``None`` when it never ran."""
        values = self.seconds.get(step)
        return statistics.median(values) if values else None


class Progress(Background):
    """Print the rotation as it happens; used as the driver's ``on_step`` callback.

    It also watches the SMTP server's AUTH log on a thread and prints each attempt made with the
    pending key (the function's SMTP test) as it comes.
    """

    def __init__(self, console: Console, world: World, *, app: MailApp | None = None) -> None:
        self.console = console
        self.world = world
        self.app = app
        self.times = StepTimes()
        self.test_auth = 0
        self.test_refused = 0
        self.attempt_number = 0
        self._pending_key: str | None = None
        self._running: tuple[str, float] | None = None
        self._seen = len(world.ses.auth_attempts)
        self._lock = threading.Lock()
        super().__init__("auth-log")

    def __call__(self, step: str, token: str, record: StepRecord | None) -> None:
        """Show a step starting (``record`` is None) or ending: the driver's ``on_step``."""
        if record is None:
            if step == "createSecret":
                self.attempt_number += 1
                style = "bold" if self.attempt_number == 1 else "bold yellow"
                line = f"  attempt {self.attempt_number}  (token {token[:8]}…)"
                if self.attempt_number > 1:
                    line += "  same token: the retry resumes this rotation"
                self.console.print(Text(line, style=style))
            if step == "finishSecret":
                # From here on the app logs in with this key too: stop attributing it to the test.
                self.drain()
                self._pending_key = None
            self._running = (step, time.monotonic())
            return
        self._running = None
        self.drain()
        self.times.seconds[step].append(record.seconds)
        if record.ok:
            self.console.print(f"    ✓ {step:<13} {record.seconds:6.2f}s{self._detail(step)}")
        else:
            self.console.print(
                Text(f"    ✗ {step:<13} {record.seconds:6.2f}s  {record.error}", style="red")
            )

    def _detail(self, step: str) -> str:
        if step == "createSecret":
            self._pending_key = self.world.value(PENDING).get("access_key_id")
            return f"  new key {mask(self._pending_key)} staged as AWSPENDING"
        if step == "testSecret":
            return "  the pending credentials log in over SMTP"
        if step == "finishSecret":
            return f"  AWSCURRENT → {mask(self.world.value().get('access_key_id'))}"
        return "  the pending key exists and is Active"

    def drain(self) -> None:
        """Print the AUTH attempts made with the pending key since the last call."""
        with self._lock:
            attempts = self.world.ses.auth_attempts
            new, self._seen = attempts[self._seen :], len(attempts)
            for attempt in new:
                if self._pending_key is None or attempt.access_key_id != self._pending_key:
                    continue
                self.test_auth += 1
                self.test_refused += not attempt.accepted
                reason = _REASONS.get(attempt.reason, attempt.reason)
                style = "green" if attempt.accepted else "yellow"
                line = f"        AUTH {mask(attempt.access_key_id)}  {reason}"
                self.console.print(Text(line, style=style))

    def run(self) -> None:
        """Print the AUTH attempts as they come, until stopped."""
        while not self._stop.wait(_POLL):
            self.drain()

    def status(self) -> Text:
        """Return the live line: the running step and the app's counters."""
        parts = []
        if self._running is not None:
            step, started = self._running
            parts.append(f"{step} running {time.monotonic() - started:4.1f}s")
        if self.app is not None:
            stats = self.app.stats
            parts.append(
                f"app: {stats.ok} sent ok, {stats.failed} failed, "
                f"{stats.rereads} re-reads, key {mask(self.app.key_id)}"
            )
        return Text("  ·  ".join(parts), style="cyan")
