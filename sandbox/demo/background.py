"""A thread the demo runs beside the rotations, started and stopped as a context manager."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from types import TracebackType

JOIN_TIMEOUT = 15.0


class Background:
    """Run :meth:`run` on a daemon thread inside a ``with`` block; :meth:`stop` ends it."""

    def __init__(self, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.run, name=f"demo-{name}", daemon=True)

    def __enter__(self) -> Self:
        """Start the thread."""
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the thread."""
        self.stop()

    def stop(self) -> None:
        """Ask the thread to end and wait for it (bounded)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(JOIN_TIMEOUT)

    def run(self) -> None:
        """Do the thread's work; return soon after ``self._stop`` is set."""
        raise NotImplementedError
