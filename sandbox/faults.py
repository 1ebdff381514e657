"""Fault injection for AWS calls, through botocore's event hooks on the clients under test.

A fault is attached to one client for one operation and fires on the n-th call of it:
- ``BEFORE``: the call fails before it reaches the service (nothing happened);
- ``LOST_ANSWER``: the call took effect, then its answer is lost (the caller sees an error).
No monkeypatching: botocore's own ``before-call`` / ``after-call`` events carry the fault.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import EndpointConnectionError

if TYPE_CHECKING:
    from collections.abc import Iterator


class FaultKind(StrEnum):
    """Where in a call the fault strikes."""

    BEFORE = "before"
    LOST_ANSWER = "lost-answer"


class InjectedFaultError(EndpointConnectionError):
    """A connection-level failure raised by the fault layer (what a lost answer looks like)."""


@dataclass
class Fault:
    """One fault: fires on the ``nth`` call of ``operation`` (1-based), ``times`` times."""

    operation: str
    kind: FaultKind
    nth: int = 1
    times: int = 1
    seen: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    def _due(self) -> bool:
        self.seen += 1
        if self.seen >= self.nth and self.fired < self.times:
            self.fired += 1
            return True
        return False

    def before_call(self, **_: Any) -> None:  # noqa: ANN401 - botocore hook
        """Fail before the request leaves."""
        if self.kind is FaultKind.BEFORE and self._due():
            raise InjectedFaultError(endpoint_url=f"injected fault before {self.operation}")

    def after_call(self, **_: Any) -> None:  # noqa: ANN401 - botocore hook
        """Lose the answer of a call that took effect."""
        if self.kind is FaultKind.LOST_ANSWER and self._due():
            raise InjectedFaultError(endpoint_url=f"injected fault after {self.operation}")


@contextlib.contextmanager
def inject(client: Any, fault: Fault) -> Iterator[Fault]:  # noqa: ANN401 - any boto3 client
    """Attach ``fault`` to ``client`` for the duration of the block."""
    service = client.meta.service_model.service_id.hyphenize()
    before, after = (
        f"before-call.{service}.{fault.operation}",
        f"after-call.{service}.{fault.operation}",
    )
    client.meta.events.register(before, fault.before_call, unique_id=f"fault-before-{id(fault)}")
    client.meta.events.register(after, fault.after_call, unique_id=f"fault-after-{id(fault)}")
    try:
        yield fault
    finally:
        client.meta.events.unregister(before, unique_id=f"fault-before-{id(fault)}")
        client.meta.events.unregister(after, unique_id=f"fault-after-{id(fault)}")
