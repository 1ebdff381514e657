"""Plays AWS Secrets Manager's side of a rotation, over moto.

moto's own ``rotate_secret`` promotes a new version at once and would need Docker to invoke a
Lambda, so this driver does what the service does instead: RotateSecret stages ``AWSPENDING`` on
a new, empty version (no value) named by a ClientRequestToken and marks rotation enabled; then the
function is invoked with createSecret, setSecret, testSecret and finishSecret, the same token each
time. A step that raises fails the rotation; ``AWSPENDING`` stays where it is, and the service
retries later with the same token, from createSecret. A new rotation while ``AWSPENDING`` sits on
a version other than ``AWSCURRENT`` is refused ("rotation in progress").
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.secretsmanager.models import secretsmanager_backends

if TYPE_CHECKING:
    from collections.abc import Callable

STEPS: Final = ("createSecret", "setSecret", "testSecret", "finishSecret")
PENDING: Final = "AWSPENDING"
CURRENT: Final = "AWSCURRENT"
PREVIOUS: Final = "AWSPREVIOUS"


class Handler(Protocol):
    """The rotation function's entry point."""

    def __call__(self, event: dict[str, Any], context: Any) -> object:  # noqa: ANN401 - Lambda contract
        """Run one rotation step."""


class RotationInProgressError(RuntimeError):
    """RotateSecret was called while another rotation's AWSPENDING version is outstanding."""


@dataclass(frozen=True)
class LocalLambdaContext:
    """A Lambda context for in-process invocations, with a real remaining-time clock."""

    timeout_seconds: float = 60.0
    function_name: str = "ses-smtp-rotation"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ses-smtp-rotation"
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/ses-smtp-rotation"
    log_stream_name: str = "local"
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before this invocation would time out."""
        return max(0, int((self.started + self.timeout_seconds - time.monotonic()) * 1000))


@dataclass
class StepRecord:
    """One invocation of the function."""

    step: str
    seconds: float
    error: BaseException | None = None
    # The RotationToken the invocation's event carried (a secret: kept out of the repr).
    rotation_token: str = field(default="", repr=False)

    @property
    def ok(self) -> bool:
        """Whether the step returned without raising."""
        return self.error is None


@dataclass
class Attempt:
    """One pass through the steps with a token, stopped by the first failing step."""

    token: str
    steps: list[StepRecord] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether all four steps succeeded."""
        return len(self.steps) == len(STEPS) and all(record.ok for record in self.steps)

    @property
    def error(self) -> BaseException | None:
        """The exception of the failing step, if any."""
        return next((record.error for record in self.steps if record.error is not None), None)


@dataclass
class Rotation:
    """A rotation: its token and every attempt the service made."""

    token: str
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the last attempt completed."""
        return bool(self.attempts) and self.attempts[-1].ok


@dataclass
class SecretsManagerDriver:
    """Drive rotations of one secret through ``handler`` the way Secrets Manager does.

    Examples
    --------
    >>> driver = SecretsManagerDriver(secret_id=arn, handler=lambda_handler)  # doctest: +SKIP
    >>> driver.rotate().ok  # doctest: +SKIP
    True
    """

    secret_id: str
    handler: Handler
    region: str = "us-east-1"
    account_id: str = DEFAULT_ACCOUNT_ID
    lambda_timeout: float = 60.0
    on_step: Callable[[str, str, StepRecord | None], None] | None = None
    # Whether the service strips AWSPENDING from the version it just made AWSCURRENT.
    clear_pending_after_finish: bool = True
    # Every invocation and every RotationToken the driver sent (leak checks scan for them).
    history: list[StepRecord] = field(default_factory=list)
    rotation_tokens: list[str] = field(default_factory=list)

    def _secret(self) -> Any:  # noqa: ANN401 - moto's FakeSecret is untyped
        return secretsmanager_backends[self.account_id][self.region].secrets[self.secret_id]

    def enable_rotation(self, lambda_arn: str | None = None) -> None:
        """Mark rotation enabled with a rotation function, as RotateSecret does."""
        secret = self._secret()
        # moto reports RotationEnabled only once rotation was requested, as RotateSecret does.
        secret.rotation_requested = True
        secret.rotation_enabled = True
        secret.auto_rotate_after_days = secret.auto_rotate_after_days or 30
        function = LocalLambdaContext().function_name
        own = f"arn:aws:lambda:{self.region}:{self.account_id}:function:{function}"
        secret.rotation_lambda_arn = lambda_arn or own

    def stages(self) -> dict[str, list[str]]:
        """Return version id -> staging labels, straight from the service's state."""
        return {vid: list(v["version_stages"]) for vid, v in self._secret().versions.items()}

    def pending_version(self) -> str | None:
        """Return the version carrying AWSPENDING, if any."""
        return next((vid for vid, stages in self.stages().items() if PENDING in stages), None)

    def start(self, token: str | None = None) -> str:
        """Begin a rotation (RotateSecret): stage AWSPENDING on an empty version; return its token.

        Raises
        ------
        RotationInProgressError
            AWSPENDING is on a version other than AWSCURRENT and ``token`` is not that version.
        """
        secret = self._secret()
        pending = self.pending_version()
        if pending is not None and CURRENT not in secret.versions[pending]["version_stages"]:
            if token != pending:
                msg = f"rotation in progress: version {pending} is still AWSPENDING"
                raise RotationInProgressError(msg)
            return pending
        token = token or str(uuid.uuid4())
        for version in secret.versions.values():
            if PENDING in version["version_stages"]:
                version["version_stages"].remove(PENDING)
        secret.versions.setdefault(
            token, {"version_id": token, "version_stages": [], "createdate": int(time.time())}
        )
        secret.versions[token]["version_stages"].append(PENDING)
        if not secret.rotation_enabled:
            self.enable_rotation()
        return token

    def invoke(self, step: str, token: str) -> StepRecord:
        """Invoke the function for one step, as the service does, and record the outcome."""
        event = {
            "SecretId": self._secret().arn,
            "ClientRequestToken": token,
            "Step": step,
            "RotationToken": str(uuid.uuid4()),
        }
        self.rotation_tokens.append(event["RotationToken"])
        if self.on_step is not None:
            self.on_step(step, token, None)
        started = time.monotonic()
        record = StepRecord(step=step, seconds=0.0, rotation_token=event["RotationToken"])
        try:
            self.handler(event, LocalLambdaContext(timeout_seconds=self.lambda_timeout))
        except Exception as err:  # noqa: BLE001 - the service records any failure of the function
            record.error = err
        record.seconds = time.monotonic() - started
        self.history.append(record)
        if self.on_step is not None:
            self.on_step(step, token, record)
        return record

    def attempt(self, token: str) -> Attempt:
        """Run the four steps with ``token``, stopping at the first failure."""
        attempt = Attempt(token=token)
        for step in STEPS:
            record = self.invoke(step, token)
            attempt.steps.append(record)
            if not record.ok:
                break
        if attempt.ok:
            # The service records when a rotation last completed (DescribeSecret's
            # LastRotatedDate); RotateSecret would, but the driver plays that part here.
            self._secret().last_rotation_date = int(time.time())
        if attempt.ok and self.clear_pending_after_finish:
            stages = self._secret().versions[token]["version_stages"]
            if CURRENT in stages and PENDING in stages:
                stages.remove(PENDING)
        return attempt

    def rotate(
        self,
        *,
        token: str | None = None,
        max_attempts: int = 3,
        before_retry: Callable[[Attempt], None] | None = None,
    ) -> Rotation:
        """Rotate the secret: start, run the steps, retry a failure with the same token.

        ``before_retry`` runs between attempts (a test heals a fault there; the service waits).
        """
        rotation = Rotation(token=self.start(token))
        for number in range(max_attempts):
            if number and before_retry is not None:
                before_retry(rotation.attempts[-1])
            rotation.attempts.append(self.attempt(rotation.token))
            if rotation.attempts[-1].ok:
                break
        return rotation


def sweep(driver: SecretsManagerDriver, secret_arn: str) -> dict[str, str]:
    """Invoke the function as the schedule does (``RetireOldKeys``); return the sweep's summary."""
    event = {"Action": "RetireOldKeys", "SecretId": secret_arn}
    result = driver.handler(event, LocalLambdaContext())
    if not isinstance(result, dict):
        msg = f"the sweep returned {result!r}, not its summary"
        raise TypeError(msg)
    return result
