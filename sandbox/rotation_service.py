"""``RotateSecret`` as the service runs it, for secrets the local driver rotates.

moto's ``RotateSecret`` looks its rotation function up among moto's own Lambdas and fails for the
local driver's ARN. :func:`install` makes it hand a secret :func:`serve` registered to its driver
instead, the way Secrets Manager does: the call stages ``AWSPENDING`` on a new, empty version named
by the ``ClientRequestToken`` and returns at once, and the four steps run afterwards, on a thread
of their own (one attempt: a step that fails ends it, as the service's first try does). A second
call with the same token while that rotation is pending changes nothing (botocore's retry of a
call whose answer was lost); another token is refused as the service refuses it ("a previous
rotation isn't complete"). A secret that no driver serves and that has no rotation function is
refused as the service refuses it (``InvalidRequestException``), instead of moto's rotation of
nothing.

The function's log lines go where Lambda sends them: to the CloudWatch Logs group
``/aws/lambda/<function name of the rotation ARN>`` (moto's, so ``FilterLogEvents`` sees them),
one stream per attempt, and not to this process's stdout; so does what the attempt's thread prints
on stdout (its metrics, as embedded-metric JSON), as Lambda sends a function's stdout there
(:class:`sandbox.lambda_stdout.StdoutRouter`). :attr:`Service.log_lines` keeps them too, so that
the tests' leak scan reads them. It works the same with ``mock_aws`` and with moto's
server, which runs in this process.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from moto.logs.models import logs_backends
from moto.secretsmanager.exceptions import InvalidRequestException
from moto.secretsmanager.models import SecretsManagerBackend

from sandbox.lambda_stdout import StdoutRouter
from sandbox.secrets_manager import RotationInProgressError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sandbox.secrets_manager import SecretsManagerDriver

FUNCTION_LOGGER: Final = "ses-smtp-rotation"
"""The rotation function's Powertools logger (its ``service``)."""
JOIN_SECONDS: Final = 30.0
IN_PROGRESS: Final = "A previous rotation isn't complete. That rotation will be reattempted."
NO_FUNCTION: Final = "No Lambda rotation function ARN is associated with this secret."
_MARK: Final = "_hands_rotation_to_the_local_driver"


@dataclass
class Service:
    """One secret whose ``RotateSecret`` runs through ``driver``, and what its runs logged."""

    driver: SecretsManagerDriver
    lambda_arn: str
    log_lines: list[str] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def function_name(self) -> str:
        """The function's name: the ARN's last part."""
        return self.lambda_arn.rsplit(":", 1)[-1]

    @property
    def log_group(self) -> str:
        """Where Lambda writes the function's logs."""
        return f"/aws/lambda/{self.function_name}"

    @property
    def logs_region(self) -> str:
        """The function's region (from its ARN), where its log group lives."""
        parts = self.lambda_arn.split(":")
        return parts[3] if len(parts) > 3 and parts[3] else self.driver.region  # noqa: PLR2004 - arn:partition:service:region

    @property
    def logs_account(self) -> str:
        """The function's account (from its ARN), where its log group lives.

        It differs from the secret's when a fleet's function rotates a member account's secret.
        """
        parts = self.lambda_arn.split(":")
        return parts[4] if len(parts) > 4 and parts[4] else self.driver.account_id  # noqa: PLR2004 - arn:partition:service:region:account

    def begin(self, token: str) -> None:
        """Run an attempt of ``token``'s rotation on a thread, unless one is running already."""
        with self._lock:
            if any(t.name == f"rotation-{token}" and t.is_alive() for t in self.threads):
                return
            thread = threading.Thread(
                target=self._attempt, args=(token,), name=f"rotation-{token}", daemon=True
            )
            self.threads.append(thread)
        thread.start()

    def _attempt(self, token: str) -> None:
        # Lambda runs this invocation in an environment of its own; this process has one module
        # state, so it starts once the invocation that called RotateSecret (if any) has returned.
        with _FOREGROUND:
            _FOREGROUND.wait_for(lambda: not _IN_FOREGROUND, timeout=JOIN_SECONDS)
        stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        _FORWARDER.add(self, stream)
        try:
            with _STDOUT.routed():
                self.driver.attempt(token)
        finally:
            _STDOUT.flush_thread()
            _FORWARDER.remove()

    def join(self, timeout: float = JOIN_SECONDS) -> bool:
        """Wait (at most ``timeout`` seconds in all) for the attempts; return whether all ended."""
        deadline = time.monotonic() + timeout
        for thread in list(self.threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self.threads)

    def forward(self, line: str, created: float, stream: str) -> None:
        """Put one of the function's log lines into its log group (made on first use)."""
        self.log_lines.append(line)
        backend = logs_backends[self.logs_account][self.logs_region]
        backend.ensure_log_group(self.log_group)  # deleted since serve() made it: as Lambda does
        backend.ensure_log_stream(self.log_group, stream)
        backend.put_log_events(
            self.log_group, stream, [{"timestamp": int(created * 1000), "message": line}]
        )


class _Forwarder(logging.Filter):
    """A filter on the function's logger: lines of an attempt's thread go to its log group."""

    def __init__(self) -> None:
        super().__init__()
        self._sinks: dict[int, tuple[Service, str]] = {}

    def add(self, service: Service, stream: str) -> None:
        logging.getLogger(FUNCTION_LOGGER).addFilter(self)  # idempotent
        self._sinks[threading.get_ident()] = (service, stream)

    def remove(self) -> None:
        self._sinks.pop(threading.get_ident(), None)

    def writer(self) -> Callable[[str], None] | None:
        """Return how the calling thread's attempt logs a line, or ``None`` outside attempts."""
        found = self._sinks.get(threading.get_ident())
        if found is None:
            return None
        service, stream = found
        return lambda line: service.forward(line, time.time(), stream)

    def filter(self, record: logging.LogRecord) -> bool:
        sink = self._sinks.get(record.thread or 0)
        if sink is None:
            return True
        logger = logging.getLogger(FUNCTION_LOGGER)
        formatter = next((h.formatter for h in logger.handlers if h.formatter), None)
        line = (formatter or logging.Formatter()).format(record)
        service, stream = sink
        service.forward(line, record.created, stream)
        return False  # Lambda sends stdout to the log group: no copy on this process's stdout


_FORWARDER: Final = _Forwarder()


_STDOUT: Final = StdoutRouter(_FORWARDER.writer)
_SERVED: dict[str, Service] = {}  # secret ARN -> its service
_FOREGROUND: Final = threading.Condition()
_IN_FOREGROUND: list[int] = []  # one entry per invocation running in :func:`foreground`


@contextlib.contextmanager
def foreground() -> Iterator[None]:
    """Mark an invocation of the function made in this process (a custom resource's request).

    A rotation it starts through ``RotateSecret`` waits until it has returned, as the separate
    invocation Lambda would run: the function's per-invocation state (its metrics) is one here.
    """
    with _FOREGROUND:
        _IN_FOREGROUND.append(1)
    try:
        yield
    finally:
        with _FOREGROUND:
            _IN_FOREGROUND.pop()
            _FOREGROUND.notify_all()


_SERVED_LOCK: Final = threading.Lock()


def serve(driver: SecretsManagerDriver) -> Service:
    """Make ``RotateSecret`` on the driver's secret hand the rotation to ``driver``.

    The secret's rotation function (``RotationLambdaARN``, set by
    :meth:`~sandbox.secrets_manager.SecretsManagerDriver.enable_rotation`) is the driver's.
    """
    install()
    secret = driver._secret()  # noqa: SLF001 - the driver's own secret
    service = Service(driver=driver, lambda_arn=secret.rotation_lambda_arn)
    # The stack creates the function's log group (template.yaml), before any rotation ran.
    logs_backends[service.logs_account][service.logs_region].ensure_log_group(service.log_group)
    with _SERVED_LOCK:
        _SERVED[secret.arn] = service
    return service


def withdraw(service: Service, *, timeout: float = JOIN_SECONDS) -> bool:
    """Stop serving ``service``'s secret; wait (bounded) for its attempts; return if all ended."""
    with _SERVED_LOCK:
        for arn, served in list(_SERVED.items()):
            if served is service:
                del _SERVED[arn]
    return service.join(timeout)


def _served(backend: SecretsManagerBackend, secret_id: str, lambda_arn: str | None) -> Any:  # noqa: ANN401 - moto's FakeSecret
    try:
        secret = backend.secrets[secret_id]
    except KeyError:
        return None
    service = _SERVED.get(getattr(secret, "arn", ""))
    if service is None or service.driver.account_id != backend.account_id:
        return None
    if (lambda_arn or getattr(secret, "rotation_lambda_arn", "")) != service.lambda_arn:
        return None
    return secret, service


def install() -> None:
    """Patch moto's ``RotateSecret`` to hand served secrets to their driver (idempotent)."""
    original = SecretsManagerBackend.rotate_secret
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def rotate_secret(  # noqa: PLR0913, PLR0917 - moto's signature
        self: SecretsManagerBackend,
        secret_id: str,
        client_request_token: str | None = None,
        rotation_lambda_arn: str | None = None,
        rotation_rules: dict[str, Any] | None = None,
        rotate_immediately: bool = True,  # noqa: FBT001, FBT002 - moto's signature
    ) -> str:
        found = _served(self, secret_id, rotation_lambda_arn) if rotate_immediately else None
        known = self.secrets.get(secret_id) if secret_id in self.secrets else None
        unset = not (rotation_lambda_arn or getattr(known, "rotation_lambda_arn", None))
        if found is None and known is not None and unset:
            raise InvalidRequestException(NO_FUNCTION)
        if found is None:
            return original(
                self,
                secret_id,
                client_request_token,
                rotation_lambda_arn,
                rotation_rules,
                rotate_immediately,
            )
        secret, service = found
        if client_request_token:
            self._client_request_token_validator(client_request_token)
        try:
            token = service.driver.start(client_request_token)
        except RotationInProgressError:
            raise InvalidRequestException(IN_PROGRESS) from None
        days = (rotation_rules or {}).get("AutomaticallyAfterDays")
        if days:
            secret.auto_rotate_after_days = int(days)
        secret.rotation_requested = True
        secret.rotation_enabled = True
        service.begin(token)
        return json.dumps({"ARN": secret.arn, "Name": secret.name, "VersionId": token})

    setattr(rotate_secret, _MARK, True)
    SecretsManagerBackend.rotate_secret = rotate_secret  # type: ignore[method-assign]
