"""Run the rotation function on several threads the way Lambda runs it in several environments.

Lambda serves concurrent invocations from separate execution environments, each a process with
its own module state, and never runs two invocations in one environment at once. Threads in one
interpreter share module state, so :func:`execution_environments` gives each thread what a warm
environment keeps to itself:

- the cold-start runtime (``rotation_handler.app.runtime()``: settings and boto3 clients, whose
  standard-mode retry quota is per client);
- the cache of version values (``rotation_handler.versions``), which one invocation relies on
  between its own reads and writes;
- the metrics an invocation adds before its Powertools ``log_metrics`` flushes them (one thread's
  flush must not clear, or publish, another's half-built set).

The function's code is unchanged: the module attributes are swapped for the block and restored
after it. Its Powertools logger stays shared (its keys only shape the JSON lines it prints).
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import MutableMapping, MutableSequence
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from rotation_handler.app import Runtime


class PerThreadDict(MutableMapping[Any, Any]):
    """An ``OrderedDict`` of which every thread sees its own copy."""

    def __init__(self) -> None:
        self._local = threading.local()

    @property
    def data(self) -> OrderedDict[Any, Any]:
        """Return the calling thread's dictionary."""
        data: OrderedDict[Any, Any] | None = getattr(self._local, "data", None)
        if data is None:
            data = self._local.data = OrderedDict()
        return data

    def __getitem__(self, key: Any) -> Any:  # noqa: ANN401 - any mapping
        """As the mapping's, on this thread's copy."""
        return self.data[key]

    def __setitem__(self, key: Any, value: Any) -> None:  # noqa: ANN401 - any mapping
        """As the mapping's, on this thread's copy."""
        self.data[key] = value

    def __delitem__(self, key: Any) -> None:  # noqa: ANN401 - any mapping
        """As the mapping's, on this thread's copy."""
        del self.data[key]

    def __iter__(self) -> Iterator[Any]:
        """As the mapping's, on this thread's copy."""
        return iter(self.data)

    def __len__(self) -> int:
        """As the mapping's, on this thread's copy."""
        return len(self.data)

    def move_to_end(self, key: Any, last: bool = True) -> None:  # noqa: ANN401, FBT001, FBT002 - OrderedDict's signature
        """As :meth:`OrderedDict.move_to_end`, on this thread's copy."""
        self.data.move_to_end(key, last=last)

    def popitem(self, last: bool = True) -> tuple[Any, Any]:  # noqa: FBT001, FBT002 - OrderedDict's signature
        """As :meth:`OrderedDict.popitem`, on this thread's copy."""
        return self.data.popitem(last=last)


class PerThreadList(MutableSequence[Any]):
    """A list of which every thread sees its own copy."""

    def __init__(self) -> None:
        self._local = threading.local()

    @property
    def data(self) -> list[Any]:
        """Return the calling thread's list."""
        data: list[Any] | None = getattr(self._local, "data", None)
        if data is None:
            data = self._local.data = []
        return data

    def __getitem__(self, index: Any) -> Any:  # noqa: ANN401 - any list
        """As the list's, on this thread's copy."""
        return self.data[index]

    def __setitem__(self, index: Any, value: Any) -> None:  # noqa: ANN401 - any list
        """As the list's, on this thread's copy."""
        self.data[index] = value

    def __delitem__(self, index: Any) -> None:  # noqa: ANN401 - any list
        """As the list's, on this thread's copy."""
        del self.data[index]

    def __len__(self) -> int:
        """As the list's, on this thread's copy."""
        return len(self.data)

    def insert(self, index: int, value: Any) -> None:  # noqa: ANN401 - any list
        """As :meth:`list.insert`, on this thread's copy."""
        self.data.insert(index, value)


# The Powertools metrics provider's per-invocation stores, and what each becomes per thread.
_METRIC_STORES: Final = {
    "metric_set": PerThreadDict,
    "dimension_set": PerThreadDict,
    "metadata_set": PerThreadDict,
    "dimension_sets": PerThreadList,
}


@contextlib.contextmanager
def _metrics_per_thread(provider: Any) -> Iterator[None]:  # noqa: ANN401 - Powertools' provider
    saved = {name: getattr(provider, name) for name in _METRIC_STORES if hasattr(provider, name)}
    try:
        for name in saved:
            setattr(provider, name, _METRIC_STORES[name]())
        yield
    finally:
        for name, store in saved.items():
            setattr(provider, name, store)


@contextlib.contextmanager
def execution_environments(
    on_runtime: Callable[[Runtime], None] | None = None,
) -> Iterator[list[Runtime]]:
    """Give each thread invoking the function its own runtime, value cache and metric set.

    ``on_runtime`` is called with each runtime as it is built (to hook its clients); the yielded
    list holds every runtime built so far, one per environment (thread) that invoked the function.
    """
    from rotation_handler import app, versions  # noqa: PLC0415 - loads with the world's env
    from rotation_handler.observability import metrics  # noqa: PLC0415

    original = app.runtime
    shared_values = versions._VALUES  # noqa: SLF001 - the cache this harness splits per thread
    local = threading.local()
    lock = threading.Lock()
    built: list[Runtime] = []

    def runtime(environ: Mapping[str, str] | None = None) -> Runtime:
        own: Runtime | None = getattr(local, "runtime", None)
        with lock:
            saved = app._runtime  # noqa: SLF001 - the per-container cache, swapped per thread
            app._runtime = own  # noqa: SLF001
            try:
                result = original(environ)
            finally:
                app._runtime = saved  # noqa: SLF001
        if result is not own:
            local.runtime = result
            built.append(result)
            if on_runtime is not None:
                on_runtime(result)
        return result

    setattr(app, "runtime", runtime)  # noqa: B010 - the module attribute the handler calls
    setattr(versions, "_VALUES", PerThreadDict())  # noqa: B010
    try:
        with _metrics_per_thread(metrics.provider):
            yield built
    finally:
        setattr(app, "runtime", original)  # noqa: B010
        setattr(versions, "_VALUES", shared_values)  # noqa: B010
