"""The failure notice: the function's own event when a rotation step fails, once per streak.

Secrets Manager's RotationFailed event says only that a step failed. When a step of a rotation
fails, the function also puts an event on the default event bus of its own account and region
(``source`` :data:`SOURCE`, ``detail-type`` :data:`DETAIL_TYPE`) whose detail names the secret, the
app (the secret's name), the step, the error's class and the first line of its message, bounded
and printable. The messages are written to hold no secret (``exceptions.py``); the notice passes
them through :func:`cause_of` all the same. The stacks' rules route it to the notice topic.

A streak is one rotation: one ``ClientRequestToken``. Secrets Manager retries a failed rotation
with the same token, from createSecret, for as long as AWSPENDING stays on that version; every
retry that fails again is the same streak and sends nothing. The first failure puts the event and
then tags the secret :data:`FAILING_TAG` = a digest of the token, which every later step reads
for free in DescribeSecret's answer. A new rotation (a new token, after the runbook cancelled the
old one) is a new streak and notifies once more; a finishSecret that succeeds ends the streak and
removes the tag (one UntagResource, only when the tag is there: a healthy rotation makes no call
for notices). A crash between the event and the tag costs one duplicate notice, never a lost one.

Notices are for secrets the gate admitted: a secret refused by the gate (another secret, outside
the fleet, an unknown account) is neither tagged nor announced. A failure to notify is logged as a
warning and never replaces the step's own error. An event EventBridge answers but does not take
(``FailedEntryCount``) is a failure to notify: the secret is not tagged, so the next retry tries
again. The notice's client makes at most two short attempts, so that a slow EventBridge cannot
spend the time the step's own error needs to reach the log.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol, Self

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from rotation_handler import gate
from rotation_handler.exceptions import NotBoundError, RotationError
from rotation_handler.observability import logger, metrics

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from mypy_boto3_secretsmanager import SecretsManagerClient

    from rotation_handler.events import StepEvent
    from rotation_handler.settings import Settings
    from rotation_handler.state import SecretState

SOURCE: Final = "ses-smtp-rotation"
DETAIL_TYPE: Final = "SES SMTP rotation step failed"
FAILING_TAG: Final = "ses-smtp-rotation:failing"
# Counted with the notice, once per streak: rotations that failed (their retries not counted).
FAILED_METRIC: Final = "FailedRotations"
# The longest cause a notice carries: the first line of a message, which names the fix.
MAX_CAUSE: Final = 300
_DIGEST_CHARS: Final = 16
# Any failure of EventBridge or of the tagging: logged, never raised over the step's error.
_NOTICE_ERRORS: Final = (ClientError, BotoCoreError, RotationError)


class EventPublisher(Protocol):
    """What the notice needs of an EventBridge client (boto3's ``events`` client)."""

    def put_events(self, *, Entries: list[Any]) -> Any:  # noqa: ANN401, N803 - boto3's shape
        """Put events on a bus."""


def digest(token: str) -> str:
    """Return the tag value that names a rotation: a short digest of its token.

    Examples
    --------
    >>> digest("a1b2c3d4-0000-4000-8000-000000000000")
    'f00f7c2203009b66'
    """
    return hashlib.sha256(token.encode()).hexdigest()[:_DIGEST_CHARS]


def cause_of(err: BaseException) -> str:
    r"""Return the first line of ``err``'s message: printable, at most :data:`MAX_CAUSE` characters.

    Double quotes and backslashes become ``'`` and ``/``: the notice's text is a JSON string that
    the rules' input transformers splice the cause into.

    Examples
    --------
    >>> cause_of(ValueError('bad "x"\x00 value\nsecond line'))
    "bad 'x'? value"
    >>> len(cause_of(ValueError("y" * 1000)))
    300
    >>> cause_of(TimeoutError())
    'TimeoutError'
    """
    text = str(err).strip()
    line = text.splitlines()[0].strip() if text else type(err).__name__
    line = "".join(c if c.isprintable() else "?" for c in line)
    line = line.replace('"', "'").replace("\\", "/")
    return line if len(line) <= MAX_CAUSE else line[: MAX_CAUSE - 1] + "…"


@dataclass(kw_only=True)
class Streak:
    """One step's watch over its rotation's failure streak (a context manager around the step).

    Set :attr:`state` as soon as the gate admitted the secret; on a failure without it, the
    secret is asked of the gate again (one DescribeSecret, on the failure path only).
    """

    sm: SecretsManagerClient
    # The function's own EventBridge client, built only when a notice is sent.
    events: Callable[[], EventPublisher]
    settings: Settings
    event: StepEvent
    function_name: str | None = None
    state: SecretState | None = field(default=None, repr=False)

    @property
    def step(self) -> str:
        """The step being watched."""
        return self.event.step

    @property
    def token(self) -> str:
        """The rotation's token (its ClientRequestToken): a streak is one token."""
        return self.event.token

    def __enter__(self) -> Self:
        """Watch the step."""
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        err: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        """End the streak on success, notify on failure; the step's error propagates."""
        if err is None:
            self._succeeded()
        elif isinstance(err, Exception):
            self._failed(err)

    def _succeeded(self) -> None:
        """End the streak at finishSecret: remove the tag if a failure left it."""
        state = self.state
        if self.step != "finishSecret" or state is None or FAILING_TAG not in state.tags:
            return
        try:
            self.sm.untag_resource(SecretId=state.arn, TagKeys=[FAILING_TAG])
        except _NOTICE_ERRORS as problem:
            logger.warning("could not end the failure streak", extra=_why(problem))

    def _failed(self, err: Exception) -> None:
        """Notify once per streak: put the event, then tag the secret with the token's digest."""
        try:
            state = self.state or self._admitted()
            if state is None or state.tags.get(FAILING_TAG) == digest(self.token):
                return
            answer = self.events().put_events(Entries=[self.entry(state, err)])
            if answer.get("FailedEntryCount"):
                # Answered 200 but not taken: no tag, so the next retry tries again.
                entries = answer.get("Entries") or [{}]
                code = cause_of(ValueError(entries[0].get("ErrorCode") or "unknown"))
                logger.warning("the failure notice was not taken", extra={"error": code})
                return
            # Once per streak, like the notice: the dashboard's "rotations failed per day".
            metrics.add_metric(name=FAILED_METRIC, unit=MetricUnit.Count, value=1)
            self.sm.tag_resource(
                SecretId=state.arn, Tags=[{"Key": FAILING_TAG, "Value": digest(self.token)}]
            )
            logger.info("failure notice sent", extra={"notice": DETAIL_TYPE})
        except _NOTICE_ERRORS as problem:
            logger.warning("could not send the failure notice", extra=_why(problem))

    def _admitted(self) -> SecretState | None:
        """Ask the gate for the secret after a failure before the step had its state."""
        try:
            return gate.admit_secret(self.sm, self.event.secret_id, self.settings)
        except NotBoundError:
            return None  # not this function's secret: nothing to tag or announce

    def entry(self, state: SecretState, err: Exception) -> dict[str, Any]:
        """Return the PutEvents entry of a failure (no secret: names, a class, a bounded line)."""
        detail = {
            "secret": state.arn,
            "app": state.app,
            "step": self.step,
            "error": type(err).__name__,
            "cause": cause_of(err),
            "rotation": digest(self.token),
            "function": self.function_name or "",
            "fleet": self.settings.fleet.tag_value if self.settings.fleet else "",
        }
        return {
            "Source": SOURCE,
            "DetailType": DETAIL_TYPE,
            "Resources": [state.arn],
            "Detail": json.dumps(detail),
        }


def _why(problem: Exception) -> dict[str, str]:
    return {"error_class": type(problem).__name__, "error": cause_of(problem)}
