"""How ``rotate --wait`` follows one rotation: its labels and its function's log lines.

See :mod:`ses_smtp_rotator._rotate` for what is read and the exit codes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

from ses_smtp_rotator import _aws, _console, _status
from ses_smtp_rotator._rotate_lines import describe, masked
from ses_smtp_rotator.exceptions import SecretUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

STEPS: Final = ("createSecret", "setSecret", "testSecret", "finishSecret")
PENDING: Final = "AWSPENDING"
CURRENT: Final = "AWSCURRENT"
POLL_SECONDS: Final = 1.0  # FilterLogEvents allows a few calls a second per account and region
LOG_SETTLE_SECONDS: Final = 10.0  # after AWSCURRENT, how long finishSecret's last lines may take
LOG_LOOKBACK_MS: Final = 60_000  # clock skew between this machine and CloudWatch
MAX_LOG_PAGES: Final = 20
RUNBOOK: Final = "docs/runbook.md"


class LogsClient(Protocol):
    """The one CloudWatch Logs call ``rotate --wait`` makes."""

    def filter_log_events(self, **kwargs: Any) -> dict[str, Any]:  # noqa: ANN401 - boto3's
        """Return log events of a group matching a filter pattern."""


@dataclass
class Follower:
    """Follows one rotation (one token) through its labels and the function's log lines."""

    sm: SecretsManagerClient
    arn: str
    name: str
    token: str
    timeout: float
    quiet: bool = False
    logs: LogsClient | None = None
    logs_group: str | None = None
    logs_state: str = "unread"  # unread, read, denied, missing, other-account
    result: str = "running"  # started, succeeded, failed, cancelled, timed-out
    failed_step: str | None = None
    message: str | None = None
    last_seen: str = "RotateSecret called"
    old_key: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    _started: float = field(default_factory=time.monotonic)
    _started_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    _pending_seen: bool = False
    _stored: bool = False
    _value_check: bool = True
    _current: bool = False
    _done: set[str] = field(default_factory=set)
    _event_ids: set[str] = field(default_factory=set)
    _said: set[str] = field(default_factory=set)

    def say(self, text: str, step: str | None = None) -> None:
        """Show one line of progress (kept for ``--json``)."""
        seconds = time.monotonic() - self._started
        self.events.append({"seconds": round(seconds, 1), "step": step, "text": text})
        if not self.quiet:
            _console.out(f"[{seconds:5.1f}s] {text}")

    def _once(self, key: str, text: str) -> None:
        if key not in self._said:
            self._said.add(key)
            self.say(text)

    def follow(self) -> int:
        """Poll until the version is AWSCURRENT, a step fails, or the time-out; return the code."""
        deadline = self._started + self.timeout
        settle: float | None = None
        while True:
            # The labels are read first and shown last: a change they show happened before the
            # log lines read after them, which are shown first.
            news = self._poll_labels()
            self._poll_logs()
            for text, step in news:
                self.say(text, step=step)
            now = time.monotonic()
            if self.result == "failed":
                return self._failed()
            if self.result == "cancelled":
                return self._end(f"✗ {self.message}")
            if self._current:
                settle = settle or min(deadline, now + LOG_SETTLE_SECONDS)
                if self.logs_state != "read" or "finishSecret" in self._done or now >= settle:
                    return self._succeeded()
            elif now >= deadline:
                return self._timed_out()
            time.sleep(max(0.0, min(POLL_SECONDS, deadline - now)))

    # --- labels -------------------------------------------------------------------------------

    def _poll_labels(self) -> list[tuple[str, str | None]]:
        """Read the token's labels; return what changed, to show (text, step)."""
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - optional

        try:
            listed = _status._list_versions(self.sm, self.arn)  # noqa: SLF001 - the one reader
        except (ClientError, BotoCoreError) as err:
            msg = (
                f"cannot list the versions of {self.name} ({_aws.error_code(err)}): check that "
                "you may call secretsmanager:ListSecretVersionIds on it"
            )
            raise SecretUnavailableError(msg) from None
        stages = {v["VersionId"]: v.get("VersionStages", []) for v in listed}
        own = stages.get(self.token, [])
        news: list[tuple[str, str | None]] = []
        if PENDING in own and not self._pending_seen:
            self._pending_seen = True
            self.last_seen = "AWSPENDING staged"
            self.say(f"AWSPENDING is on version {self.token}: the rotation started")
        if CURRENT in own and not self._current:
            self._current = True
            self._mark_done("createSecret", "setSecret", "testSecret")
            self.last_seen = "AWSCURRENT moved to the new version"
            news.append((f"✓ AWSCURRENT is now version {self.token}", "finishSecret"))
        elif self._pending_seen and not self._current and PENDING not in own:
            other = next((v for v, s in stages.items() if PENDING in s), None)
            by = f"; AWSPENDING is now on version {other}" if other else ""
            self.result = "cancelled"
            self.message = (
                f"version {self.token} lost AWSPENDING without becoming AWSCURRENT: the rotation "
                f"was cancelled or replaced{by}"
            )
        elif PENDING in own and self._needs_value_check() and self._stored_now():
            self._stored = True
            self._mark_done("createSecret")
            self.last_seen = "createSecret stored the new version"
            news.append(("✓ createSecret: the new version holds a value", "createSecret"))
        return news

    def _needs_value_check(self) -> bool:
        """Whether to ask GetSecretValue: only while the log cannot say createSecret ended."""
        without_log = self.logs is None or self.logs_state in {"denied", "missing", "other-account"}
        return without_log and self._value_check and not self._stored

    def _stored_now(self) -> bool:
        """Whether createSecret stored the new version's value; the value is dropped unread."""
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - optional

        try:
            answer = self.sm.get_secret_value(
                SecretId=self.arn, VersionId=self.token, VersionStage=PENDING
            )
        except (ClientError, BotoCoreError) as err:
            if _aws.error_code(err) != "ResourceNotFoundException":
                self._value_check = False  # not allowed to read it: the labels will do
            return False
        del answer
        return True

    def _mark_done(self, *steps: str) -> None:
        self._done.update(steps)

    # --- the function's log -------------------------------------------------------------------

    def _poll_logs(self) -> None:
        if self.logs_state == "other-account":
            return
        if self.logs is None or self.logs_group is None or self.logs_state == "denied":
            if self.logs_group is None:
                self._once("no-group", "no rotation function known: following labels only")
            return
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - optional

        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {
            "logGroupName": self.logs_group,
            "filterPattern": f'{{ $.version_id = "{self.token}" }}',
            "startTime": self._started_ms - LOG_LOOKBACK_MS,
        }
        try:
            for _ in range(MAX_LOG_PAGES):
                page = self.logs.filter_log_events(**params)
                found += page.get("events", [])
                if not page.get("nextToken"):
                    break
                params["nextToken"] = page["nextToken"]
        except (ClientError, BotoCoreError) as err:
            code = _aws.error_code(err)
            if code == "ResourceNotFoundException":
                self.logs_state = "missing"
                self._once(
                    "missing",
                    f"log group {self.logs_group} not found ({code}): following labels until "
                    "it appears",
                )
            else:
                self.logs_state = "denied"
                self.say(
                    f"no log access ({code} on logs:FilterLogEvents for {self.logs_group}): "
                    "following labels only"
                )
            return
        self.logs_state = "read"
        # By time; lines of the same millisecond keep the order the service answered them in.
        for event in sorted(found, key=lambda e: int(e.get("timestamp", 0))):
            event_id = str(event.get("eventId", ""))
            if event_id in self._event_ids:
                continue
            self._event_ids.add(event_id)
            self._line(str(event.get("message", "")))

    def _line(self, message: str) -> None:
        try:
            line = json.loads(message)
        except ValueError:
            return
        if not isinstance(line, dict) or line.get("version_id") != self.token:
            return
        step = str(line.get("step", "?"))
        text = masked(str(line.get("message", "")))
        if step in STEPS:
            self.last_seen = f"{step} running"
        if text == "step failed":
            self.result = "failed"
            self.failed_step = step
            self.message = masked(str(line.get("error", "no message")))
            return
        if text == "step succeeded":
            self._mark_done(step)
            self.last_seen = f"{step} done"
            self.say(f"✓ {step}", step=step)
            return
        shown, old_key = describe(line, text)
        self.old_key = old_key or self.old_key
        self.say(f"  {step}: {shown}", step=step)

    # --- the end ------------------------------------------------------------------------------

    def _pointer(self) -> str:
        return (
            f"`ses-smtp-rotator status --secret-id {self.name}` shows the rotation's state and "
            f"the fix of each problem (runbook: {RUNBOOK})"
        )

    def _end(self, text: str) -> int:
        self.say(text)
        if self.result != "succeeded":
            self.say(self._pointer())
        return _console.EXIT_OK if self.result == "succeeded" else _console.EXIT_FAILED

    def _failed(self) -> int:
        already = " (the new version is AWSCURRENT already)" if self._current else ""
        return self._end(
            f"✗ {self.failed_step} failed{already}: {self.message}. Secrets Manager retries the "
            "rotation with the same token, from createSecret"
        )

    def _succeeded(self) -> int:
        self.result = "succeeded"
        if self.logs_state == "read" and "finishSecret" in self._done:
            fate = self.old_key or "no old key retired (none to retire, or OLD_KEY_ACTION=keep)"
        elif self.logs_state == "read":
            fate = "the old key's fate is not in the log yet"
        else:
            fate = "the old key's fate is in the function's log only"
        seconds = time.monotonic() - self._started
        return self._end(f"rotation finished in {seconds:.1f} s: {fate}")

    def _timed_out(self) -> int:
        self.result = "timed-out"
        self.message = f"no end after {self.timeout:g} s; last step seen: {self.last_seen}"
        return self._end(
            f"✗ timed out: {self.message}. The rotation may still finish or fail later"
        )

    def as_json(self) -> dict[str, Any]:
        """Return the outcome for ``--json``."""
        return {
            "schema": 1,
            "secret": {"arn": self.arn, "name": self.name},
            "version_id": self.token,
            "result": self.result,
            "failed_step": self.failed_step,
            "message": self.message,
            "last_seen": self.last_seen,
            "old_key": self.old_key,
            "log": {"group": self.logs_group, "state": self.logs_state},
            "events": self.events,
        }
