"""A stop request from SIGTERM or SIGINT, for the commands that loop (``sync``).

A loop sleeps in :meth:`Stopper.wait` between passes; a signal ends the wait within
:data:`SLICE` seconds, so the loop stops between passes, never in the middle of one.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import FrameType

SLICE: Final = 0.25  # seconds: how soon a stop request ends the wait between passes


@dataclass
class Stopper:
    """Set by SIGTERM/SIGINT; :meth:`wait` sleeps in short slices so a signal ends it soon."""

    stopped: bool = False

    def stop(self, signum: int, _frame: FrameType | None) -> None:
        del signum
        self.stopped = True

    def wait(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not self.stopped and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, SLICE))
        return self.stopped


@contextlib.contextmanager
def stop_on_signals() -> Iterator[Stopper]:
    """Turn SIGTERM and SIGINT into a stop request for the life of the block (main thread)."""
    stopper = Stopper()
    if threading.current_thread() is not threading.main_thread():
        yield stopper
        return
    previous = {sig: signal.signal(sig, stopper.stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stopper
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
