"""Request-rate limits the way AWS enforces them: token buckets that answer "Rate exceeded".

A :class:`Throttle` holds one token bucket per limit (a limit names the operations that share it,
and its rate and burst). :meth:`Throttle.attach` hooks it into boto3 clients through botocore's own
``before-send`` event, registered first as :mod:`sandbox.faults` does: an HTTP attempt that finds
its bucket empty gets the service's real throttling answer
(:func:`sandbox.wire.throttling_response`) and never reaches moto, so the client's retry mode
(the function's botocore standard mode, with its real jittered back-off) sees a genuine throttling
error, sleeps and sends the request again. Every client attached to one throttle shares its
buckets, as every caller in an account and region shares AWS's. No monkeypatching: each hook is
unregistered on :meth:`Throttle.detach`.

The rates the fleet benchmark uses are :data:`AWS_LIMITS` (see docs/testing.md for their sources).
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from sandbox.wire import NOWHERE, throttling_response

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from botocore.awsrequest import AWSResponse

# Service prefixes as sandbox.calls names them ("SecretsManager.PutSecretValue").
_SERVICE_NAMES: Final = {"secrets-manager": "SecretsManager", "iam": "IAM"}
# The error codes of a throttled request (Secrets Manager's JSON, IAM's query protocol).
THROTTLING_CODES: Final = frozenset({"ThrottlingException", "Throttling"})


@dataclass(frozen=True, kw_only=True)
class Limit:
    """A request-rate limit: ``operations`` (``"Service.Operation"``) share one token bucket.

    ``burst`` tokens fit in the bucket (what an idle caller may spend at once); ``rate`` tokens a
    second flow back in.
    """

    name: str
    rate: float
    operations: frozenset[str]
    burst: float | None = None

    @property
    def capacity(self) -> float:
        """The bucket's size: ``burst``, or one second's worth of ``rate``."""
        return self.rate if self.burst is None else self.burst


def _label(event_name: str) -> tuple[str, str]:
    """Return the event's operation as sandbox.calls names it, and the event's service."""
    service, operation = event_name.split(".", 2)[1:]
    return f"{_SERVICE_NAMES.get(service, service)}.{operation}", service


def _ops(service: str, *names: str) -> frozenset[str]:
    return frozenset(f"{service}.{name}" for name in names)


# Secrets Manager (documented quotas, per account and region): the write APIs share one bucket of
# 50 requests/s; tagging has its own 50/s; GetSecretValue and DescribeSecret are read APIs with
# their own much higher rates (10,000/s and 40,000/s).
SECRETS_MANAGER_LIMITS: Final = (
    Limit(
        name="Secrets Manager writes (PutSecretValue, UpdateSecret, UpdateSecretVersionStage, ...)",
        rate=50,
        operations=_ops(
            "SecretsManager",
            "PutSecretValue",
            "UpdateSecret",
            "UpdateSecretVersionStage",
            "RemoveRegionsFromReplication",
            "ReplicateSecretToRegion",
            "StopReplicationToReplica",
        ),
    ),
    Limit(
        name="Secrets Manager tagging (TagResource, UntagResource)",
        rate=50,
        operations=_ops("SecretsManager", "TagResource", "UntagResource"),
    ),
    Limit(
        name="Secrets Manager GetSecretValue",
        rate=10_000,
        operations=_ops("SecretsManager", "GetSecretValue"),
    ),
    Limit(
        name="Secrets Manager DescribeSecret",
        rate=40_000,
        operations=_ops("SecretsManager", "DescribeSecret"),
    ),
)
# IAM publishes no rates: it throttles each API with its own token bucket(s) per account. These
# are assumptions, on the low side on purpose: 10/s for each API that changes a user or a key,
# 20/s for each API that reads them.
IAM_WRITE_RATE: Final = 10.0
IAM_READ_RATE: Final = 20.0
_IAM_WRITES: Final = (
    "CreateAccessKey",
    "UpdateAccessKey",
    "DeleteAccessKey",
    "TagUser",
    "UntagUser",
)
_IAM_READS: Final = ("GetUser", "ListAccessKeys", "ListUserTags", "GetAccessKeyLastUsed")
IAM_LIMITS: Final = tuple(
    Limit(name=f"IAM {name}", rate=IAM_WRITE_RATE, operations=_ops("IAM", name))
    for name in _IAM_WRITES
) + tuple(
    Limit(name=f"IAM {name}", rate=IAM_READ_RATE, operations=_ops("IAM", name))
    for name in _IAM_READS
)
AWS_LIMITS: Final = SECRETS_MANAGER_LIMITS + IAM_LIMITS


def scaled(limits: Iterable[Limit], factor: float) -> tuple[Limit, ...]:
    """Return ``limits`` with every rate and burst multiplied by ``factor`` (a test's low rates)."""
    return tuple(
        Limit(
            name=limit.name,
            rate=limit.rate * factor,
            operations=limit.operations,
            burst=None if limit.burst is None else limit.burst * factor,
        )
        for limit in limits
    )


@dataclass
class TokenBucket:
    """``capacity`` tokens, refilled at ``rate`` a second; each admitted request takes one."""

    rate: float
    capacity: float
    clock: Callable[[], float] = time.monotonic
    tokens: float = field(init=False)
    updated: float = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        """Start full."""
        self.tokens = self.capacity
        self.updated = self.clock()

    def take(self) -> bool:
        """Take a token if one is there; return whether the request is admitted."""
        with self._lock:
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


class Throttle:
    """Token buckets for a set of limits, shared by every client attached to it.

    ``admitted`` and ``throttled`` count HTTP attempts per ``"Service.Operation"``; an operation
    no limit names is admitted and counted.
    """

    def __init__(
        self, limits: Iterable[Limit] = AWS_LIMITS, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = tuple(limits)
        self._buckets: dict[str, TokenBucket] = {}
        for limit in self.limits:
            bucket = TokenBucket(rate=limit.rate, capacity=limit.capacity, clock=clock)
            for operation in limit.operations:
                if operation in self._buckets:
                    msg = f"{operation} is in two limits"
                    raise ValueError(msg)
                self._buckets[operation] = bucket
        self.admitted: collections.Counter[str] = collections.Counter()
        self.throttled: collections.Counter[str] = collections.Counter()
        # Throttled answers of calls that then succeeded (botocore's retry absorbed them), and
        # the calls that still failed with a throttling error once botocore gave up.
        self.absorbed: collections.Counter[str] = collections.Counter()
        self.exhausted: collections.Counter[str] = collections.Counter()
        self._count_lock = threading.Lock()
        self._call = threading.local()  # throttled answers of the call this thread is making
        self._attached: dict[int, tuple[Any, list[tuple[str, str]]]] = {}

    def before_send(
        self,
        request: Any,  # noqa: ANN401 - botocore's AWSPreparedRequest
        event_name: str = "",
        **_: Any,  # noqa: ANN401 - botocore hook
    ) -> AWSResponse | None:
        """Admit the HTTP attempt, or answer it as the service does when its rate is exceeded."""
        label, service = _label(event_name)
        bucket = self._buckets.get(label)
        admitted = bucket is None or bucket.take()
        with self._count_lock:
            (self.admitted if admitted else self.throttled)[label] += 1
        if admitted:
            return None
        self._call.throttled = getattr(self._call, "throttled", 0) + 1
        answer = throttling_response(service, str(request.url))
        # Later before-send handlers (moto's stubber) still see the request: aim it nowhere so the
        # throttled attempt never takes effect, as with the real service.
        request.url = NOWHERE
        return answer

    def before_call(self, **_: Any) -> None:  # noqa: ANN401 - botocore hook
        """Start counting the throttled answers of the logical call this thread begins."""
        self._call.throttled = 0

    def after_call(
        self,
        http_response: Any = None,  # noqa: ANN401 - botocore's AWSResponse
        parsed: Any = None,  # noqa: ANN401 - the parsed answer
        event_name: str = "",
        **_: Any,  # noqa: ANN401 - botocore hook
    ) -> None:
        """Book the call's throttled answers as absorbed, or the call as failed by throttling."""
        label, _service = _label(event_name)
        throttled = getattr(self._call, "throttled", 0)
        self._call.throttled = 0
        status = getattr(http_response, "status_code", 200)
        code = (parsed or {}).get("Error", {}).get("Code") if isinstance(parsed, dict) else None
        with self._count_lock:
            if status < 300 and throttled:  # noqa: PLR2004 - HTTP success
                self.absorbed[label] += throttled
            elif code in THROTTLING_CODES:
                self.exhausted[label] += 1

    def attach(self, client: Any) -> None:  # noqa: ANN401 - a boto3 client
        """Throttle ``client``'s requests from now on (idempotent)."""
        if id(client) in self._attached:
            return
        service = client.meta.service_model.service_id.hyphenize()
        hooks = [
            ("before-call", self.before_call, False),
            ("before-send", self.before_send, True),
            ("after-call", self.after_call, False),
        ]
        registered = []
        for stage, hook, first in hooks:
            # botocore ignores a second handler with the same unique_id: one id per stage.
            name, unique_id = f"{stage}.{service}", f"throttle-{stage}-{id(self)}"
            register = client.meta.events.register_first if first else client.meta.events.register
            register(name, hook, unique_id=unique_id)
            registered.append((name, unique_id))
        self._attached[id(client)] = (client, registered)

    def detach(self, client: Any) -> None:  # noqa: ANN401 - a boto3 client
        """Stop throttling ``client``."""
        entry = self._attached.pop(id(client), None)
        if entry is not None:
            attached, registered = entry
            for name, unique_id in registered:
                attached.meta.events.unregister(name, unique_id=unique_id)

    @contextlib.contextmanager
    def attached(self, *clients: Any) -> Iterator[Throttle]:  # noqa: ANN401 - boto3 clients
        """Throttle ``clients`` inside the block."""
        try:
            for client in clients:
                self.attach(client)
            yield self
        finally:
            for client in clients:
                self.detach(client)
