"""Fault injection for AWS calls and for SMTP logins, in one vocabulary.

A fault names where it strikes and fires on the n-th call of it (1-based, counted per operation
from the moment it is injected):

AWS side, attached to one boto3 client through botocore's own events (no monkeypatching):

- ``BEFORE``: the call fails before it reaches the service (nothing happened);
- ``LOST_ANSWER``: the call took effect, then its answer is lost (the caller sees an error);
- ``LOST_ANSWER_RETRIED``: the first HTTP attempt reaches the service and takes effect, then its
  answer is lost on the wire (a read time-out); botocore's retry sends the request again, as it
  does in AWS, and the caller sees only the retry's answer;
- ``LOST_ANSWER_EVERY``: every HTTP attempt takes effect and loses its answer (the service is slow
  and each read times out); after its last retry botocore raises the read time-out;
- ``LOST_THEN_THROTTLED``: the first HTTP attempt reaches the service and takes effect, its answer
  is lost, and every retry botocore sends is throttled: the caller sees a 400 throttling error
  although the request took effect (no error proves that nothing happened);
- ``APPLIED_LATE``: the first HTTP attempt is in flight when its answer times out, and takes
  effect only after the next call to the same service has been answered (IAM's eventual
  consistency, a slow request): a read right after the failure does not see it yet;
- ``THROTTLE``: the service answers once with its real throttling error (HTTP 400,
  ``ThrottlingException`` in JSON for Secrets Manager, ``Throttling`` in XML for IAM). The answer is
  produced at ``before-send``, registered first so it runs before moto's in-process stubber, so
  botocore's retry mode sees a genuine throttling response and retries; the caller should not
  notice. :attr:`Fault.retried` records the retry botocore reported;
- ``DIES_BEFORE`` / ``DIES_AFTER``: the Lambda run ends just before the call, or just after it took
  effect (a timeout, an out-of-memory kill). :class:`LambdaDiedError` is no botocore error, so
  none of the function's error paths (clean-up, closing its intent) run: only the service's
  same-token retry can heal what the run left behind.

:func:`inject` gives the client botocore's standard retry without its back-off sleep
(:func:`sandbox.wire.without_backoff`): the same attempts, in milliseconds.

SMTP side, armed through :meth:`sandbox.ses_smtp.SesSmtpServer.fail_next` for the next AUTH
commands (operation ``AUTH``; ``nth`` must be 1):

- ``DROP``: the connection is dropped mid-AUTH; ``SMTP_421``: 421 and close;
  ``SMTP_454``: temporary authentication failure; ``HANG``: no answer until the client times out.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

from sandbox.wire import NOWHERE, deliver, throttling_response, without_backoff

if TYPE_CHECKING:
    from collections.abc import Iterator

    from botocore.awsrequest import AWSResponse


class FaultKind(StrEnum):
    """Where and how the fault strikes."""

    BEFORE = "before"
    LOST_ANSWER = "lost-answer"
    LOST_ANSWER_RETRIED = "lost-answer-retried"
    LOST_ANSWER_EVERY = "lost-answer-every"
    LOST_THEN_THROTTLED = "lost-then-throttled"
    APPLIED_LATE = "applied-late"
    THROTTLE = "throttle"
    DIES_BEFORE = "dies-before"
    DIES_AFTER = "dies-after"
    DROP = "drop"
    SMTP_421 = "421"
    SMTP_454 = "454"
    HANG = "hang"


AWS_KINDS: Final = (
    FaultKind.BEFORE,
    FaultKind.LOST_ANSWER,
    FaultKind.LOST_ANSWER_RETRIED,
    FaultKind.LOST_ANSWER_EVERY,
    FaultKind.LOST_THEN_THROTTLED,
    FaultKind.APPLIED_LATE,
    FaultKind.THROTTLE,
    FaultKind.DIES_BEFORE,
    FaultKind.DIES_AFTER,
)
# The kinds that only a call which changes something can suffer meaningfully (a write).
WRITE_KINDS: Final = frozenset({FaultKind.LOST_THEN_THROTTLED, FaultKind.APPLIED_LATE})
# The kinds that let the request take effect on the wire and then lose its answer there.
WIRE_KINDS: Final = frozenset(
    {
        FaultKind.LOST_ANSWER_RETRIED,
        FaultKind.LOST_ANSWER_EVERY,
        FaultKind.LOST_THEN_THROTTLED,
        FaultKind.APPLIED_LATE,
    }
)
SMTP_KINDS: Final = (FaultKind.DROP, FaultKind.SMTP_421, FaultKind.SMTP_454, FaultKind.HANG)
SMTP_OPERATION: Final = "AUTH"


class InjectedFaultError(EndpointConnectionError):
    """A connection-level failure raised by the fault layer (what a lost answer looks like)."""


class LambdaDiedError(Exception):
    """The function's run ended at an AWS call (a timeout, a kill): none of its error paths ran."""


@dataclass
class Fault:
    """One fault: fires on the ``nth`` call of ``operation`` (1-based), ``times`` times."""

    operation: str
    kind: FaultKind
    nth: int = 1
    times: int = 1
    seen: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)
    retried: int = field(default=0, init=False)
    lost: int = field(default=0, init=False)
    # The delivered attempt of LOST_THEN_THROTTLED (its retries are throttled), and the request
    # APPLIED_LATE holds back until the next call of the service has been answered.
    _delivered: bool = field(default=False, init=False, repr=False)
    _held: tuple[Any, str] | None = field(default=None, init=False, repr=False)
    _armed: bool = field(default=False, init=False, repr=False)

    @property
    def smtp(self) -> bool:
        """Whether the fault strikes the SMTP side (armed on the SES-like server)."""
        return self.kind in SMTP_KINDS

    def _due(self) -> bool:
        self.seen += 1
        if self.seen >= self.nth and self.fired < self.times:
            self.fired += 1
            return True
        return False

    def before_call(self, **_: Any) -> None:  # noqa: ANN401 - botocore hook
        """Count the logical call; fail it now (BEFORE) or arm the later stage."""
        self._armed = False  # a fault armed for an earlier call that ended in an error is spent
        self._delivered = False
        if self._due():
            if self.kind is FaultKind.BEFORE:
                raise InjectedFaultError(endpoint_url=f"injected fault before {self.operation}")
            if self.kind is FaultKind.DIES_BEFORE:
                msg = f"the Lambda run ended before {self.operation}"
                raise LambdaDiedError(msg)
            self._armed = True

    def before_send(
        self,
        request: Any,  # noqa: ANN401 - botocore's AWSPreparedRequest
        service: str = "",
        event_name: str = "",
        **_: Any,  # noqa: ANN401 - botocore hook
    ) -> AWSResponse | None:
        """Answer one HTTP attempt with a throttling error, or deliver it and lose its answer."""
        if self.kind is FaultKind.LOST_THEN_THROTTLED and self._armed:
            if self._delivered:  # a retry of the request that took effect: throttled
                request_url = str(request.url)
                request.url = NOWHERE
                return throttling_response(service, request_url)
            self._delivered = True
            self.lost += 1
            deliver(request, event_name)
            raise ReadTimeoutError(endpoint_url=str(request.url))
        if self.kind is FaultKind.APPLIED_LATE and self._armed:
            self._armed = False
            self.lost += 1
            self._held = (request, event_name)
            raise ReadTimeoutError(endpoint_url=str(request.url))
        if self.kind in WIRE_KINDS and self._armed:
            if self.kind is FaultKind.LOST_ANSWER_RETRIED:
                self._armed = False
            self.lost += 1
            deliver(request, event_name)
            raise ReadTimeoutError(endpoint_url=str(request.url))
        if self.kind is FaultKind.THROTTLE and self._armed:
            self._armed = False
            answer = throttling_response(service, str(request.url))
            # botocore still hands the request to every later before-send handler (moto's
            # in-process stubber among them) and keeps the first answer: aim it nowhere, so the
            # throttled attempt never takes effect, as with the real service.
            request.url = NOWHERE
            return answer
        return None

    def after_any_call(self, **_: Any) -> None:  # noqa: ANN401 - botocore hook
        """Let a held request take effect once another call of the service has been answered."""
        if self._held is not None:
            request, event_name = self._held
            self._held = None
            deliver(request, event_name)

    def after_call(self, parsed: Any = None, **_: Any) -> None:  # noqa: ANN401 - botocore hook
        """Lose the answer of a call that took effect; note botocore's retries."""
        if self.kind is FaultKind.THROTTLE and isinstance(parsed, dict) and self.fired:
            self.retried = max(
                self.retried, parsed.get("ResponseMetadata", {}).get("RetryAttempts", 0)
            )
        if self.kind in {FaultKind.LOST_ANSWER, FaultKind.DIES_AFTER} and self._armed:
            self._armed = False
            if self.kind is FaultKind.DIES_AFTER:
                msg = f"the Lambda run ended after {self.operation}"
                raise LambdaDiedError(msg)
            raise InjectedFaultError(endpoint_url=f"injected fault after {self.operation}")


@contextlib.contextmanager
def inject(target: Any, fault: Fault) -> Iterator[Fault]:  # noqa: ANN401 - a boto3 client or the SMTP server
    """Attach ``fault`` to ``target`` (a boto3 client, or the SES-like server) inside the block.

    Raises
    ------
    ValueError
        An SMTP fault with ``nth`` other than 1, or an AWS fault aimed at the SMTP server.
    """
    if fault.smtp:
        with _inject_smtp(target, fault):
            yield fault
        return
    without_backoff(target)
    events = target.meta.events
    service = target.meta.service_model.service_id.hyphenize()
    hooks = [
        ("before-call", fault.before_call, False),
        ("before-send", functools.partial(fault.before_send, service=service), True),
        ("after-call", fault.after_call, False),
    ]
    late = (f"after-call.{service}", f"fault-late-{id(fault)}")
    events.register(late[0], fault.after_any_call, unique_id=late[1])
    registered = []
    for stage, hook, first in hooks:
        name, unique_id = f"{stage}.{service}.{fault.operation}", f"fault-{stage}-{id(fault)}"
        register = events.register_first if first else events.register
        register(name, hook, unique_id=unique_id)
        registered.append((name, unique_id))
    try:
        yield fault
    finally:
        for name, unique_id in [*registered, late]:
            events.unregister(name, unique_id=unique_id)


@contextlib.contextmanager
def _inject_smtp(server: Any, fault: Fault) -> Iterator[None]:  # noqa: ANN401 - SesSmtpServer
    if fault.nth != 1 or fault.operation != SMTP_OPERATION or not hasattr(server, "fail_next"):
        msg = f"SMTP faults strike the next {SMTP_OPERATION} commands of the SES-like server"
        raise ValueError(msg)
    before = server.pending_faults
    server.fail_next(str(fault.kind), fault.times)
    try:
        yield
    finally:
        left = server.pending_faults - before
        fault.seen = fault.fired = fault.times - max(0, left)
        for _ in range(max(0, left)):  # unfired faults must not strike a later login
            server.take_fault()
