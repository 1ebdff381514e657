"""A function's stdout, as Lambda treats it: lines the function prints go to its log group.

In a local world the function runs on threads of this process, whose ``sys.stdout`` is the
terminal's (or a test's capture). :class:`StdoutRouter` puts a stream in ``sys.stdout`` that sends
what a thread running the function prints to where that thread's log lines go, and passes the rest
(the world's own output) through, so that the terminal does not fill with the function's metrics.

:func:`follow_current_stdout` points the function's log handler, which Powertools binds to the
``sys.stdout`` of import time, at whatever ``sys.stdout`` is when it writes: Lambda never swaps
stdout, but test runners, the demo and this router do.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import TextIO


class StdoutRouter:
    """``sys.stdout`` while attempts run: an attempt's lines go to its log group, others pass.

    Installed by the first running attempt and removed by the last (unless something replaced
    ``sys.stdout`` since, which then stays).
    """

    def __init__(self, writer: Callable[[], Callable[[str], None] | None]) -> None:
        self._writer = writer
        self._lock = threading.Lock()
        self._users = 0
        self._inner: TextIO | None = None
        self._partial: dict[int, str] = {}

    @contextlib.contextmanager
    def routed(self) -> Iterator[None]:
        """Route this thread's stdout while the block runs (``sys.stdout`` replaced once)."""
        with self._lock:
            if self._users == 0 and not isinstance(sys.stdout, _RoutedStdout):
                self._inner = sys.stdout
                sys.stdout = _RoutedStdout(self, sys.stdout)
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0 and isinstance(sys.stdout, _RoutedStdout):
                    sys.stdout = sys.stdout.inner

    def write(self, text: str) -> bool:
        """Forward ``text`` when the calling thread runs an attempt; return whether it did."""
        forward = self._writer()
        if forward is None:
            return False
        ident = threading.get_ident()
        *lines, rest = (self._partial.pop(ident, "") + text).split("\n")
        if rest:
            self._partial[ident] = rest
        for line in lines:
            if line.strip():
                forward(line)
        return True

    def flush_thread(self) -> None:
        """Forward what the calling thread printed without a final newline."""
        rest = self._partial.pop(threading.get_ident(), "")
        forward = self._writer()
        if rest.strip() and forward is not None:
            forward(rest)


class _RoutedStdout(io.TextIOBase):
    """The stream :class:`StdoutRouter` puts in ``sys.stdout``."""

    def __init__(self, router: StdoutRouter, inner: TextIO) -> None:
        super().__init__()
        self.router = router
        self.inner = inner

    def write(self, text: str) -> int:
        if not self.router.write(text):
            self.inner.write(text)
        return len(text)

    def flush(self) -> None:
        self.inner.flush()

    def fileno(self) -> int:
        return self.inner.fileno()

    def isatty(self) -> bool:
        return self.inner.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.inner.encoding


class _CurrentStdout(io.TextIOBase):
    """A stream that writes to whatever ``sys.stdout`` is at the time of the write."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def follow_current_stdout() -> None:
    """Make the function's log lines go to the current ``sys.stdout`` (idempotent)."""
    from rotation_handler.observability import logger  # noqa: PLC0415 - the world's environment

    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler) and not isinstance(
        handler.stream, _CurrentStdout
    ):
        handler.setStream(_CurrentStdout())
