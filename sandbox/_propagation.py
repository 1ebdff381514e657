"""How long the SES-like server refuses a new key: SES's propagation, as the emulator plays it.

A key is refused until it is :attr:`Propagation.delay` seconds old. SES does not revoke a key that
has propagated, so when the delay changes, every key already as old as the old delay is
remembered as propagated; lowering the delay lets waiting keys in sooner (tests use that for
"time has passed").
"""

from __future__ import annotations

import threading
from typing import Any

from sandbox import _smtp_protocol


class Propagation:
    """The propagation delay and the keys that have propagated (thread-safe)."""

    def __init__(self, account_id: str, delay: float) -> None:
        self._account_id = account_id
        self._delay = delay
        self._propagated: set[str] = set()
        self._lock = threading.Lock()

    @property
    def delay(self) -> float:
        """Seconds a new key is refused after its creation."""
        return self._delay

    @delay.setter
    def delay(self, seconds: float) -> None:
        now = _smtp_protocol.utcnow()
        with self._lock:
            self._propagated |= {
                key.access_key_id
                for key in _smtp_protocol.access_keys(self._account_id)
                if (now - key.create_date).total_seconds() >= self._delay
            }
            self._delay = seconds

    def wait(self, key: Any) -> float:  # noqa: ANN401 - moto's AccessKey is untyped
        """Seconds until SES accepts ``key`` (0: it has propagated)."""
        age = (_smtp_protocol.utcnow() - key.create_date).total_seconds()
        with self._lock:
            return 0.0 if key.access_key_id in self._propagated else max(0.0, self._delay - age)
