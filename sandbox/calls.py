"""Count AWS calls where the service sees them: at moto's backends.

Each API operation of IAM and Secrets Manager (names from botocore's service models) is wrapped on
moto's backend *instances* for the duration of a ``count_calls()`` block. A call made while another
wrapped call runs on the same thread (moto's own internals) is not counted, and a request that
never reached moto (a fault injected before sending) is not counted either: the count is the
logical calls that reached the service.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import threading
from typing import TYPE_CHECKING, Any

import botocore.session
from botocore import xform_name
from moto.iam.models import iam_backends
from moto.secretsmanager.models import secretsmanager_backends

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

_SERVICES = {"iam": "IAM", "secretsmanager": "SecretsManager"}


class CallCounter(collections.Counter[str]):
    """Calls per ``"Service.Operation"`` (for example ``"IAM.CreateAccessKey"``)."""

    def total(self, service: str | None = None) -> int:
        """All calls, or those of one service prefix (``"IAM"``)."""
        return sum(
            n for name, n in self.items() if service is None or name.startswith(service + ".")
        )


def _operations(service: str) -> dict[str, str]:
    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(op): op for op in model.operation_names}


def _backends(account_id: str, region: str) -> dict[str, Any]:
    return {
        "iam": iam_backends[account_id]["global"],
        "secretsmanager": secretsmanager_backends[account_id][region],
    }


@contextlib.contextmanager
def count_calls(*, account_id: str, region: str) -> Iterator[CallCounter]:
    """Count the IAM and Secrets Manager calls that reach moto inside the block."""
    counter = CallCounter()
    depth = threading.local()
    lock = threading.Lock()  # the function may run on several threads at once (the fleet bench)
    patched: list[tuple[Any, str]] = []

    def wrap(label: str, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def counted(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401 - any backend method
            outer = getattr(depth, "level", 0) == 0
            if outer:
                with lock:
                    counter[label] += 1
            depth.level = getattr(depth, "level", 0) + 1
            try:
                return method(*args, **kwargs)
            finally:
                depth.level -= 1

        return counted

    try:
        for service, backend in _backends(account_id, region).items():
            for method_name, operation in _operations(service).items():
                method = getattr(backend, method_name, None)
                if callable(method):
                    setattr(backend, method_name, wrap(f"{_SERVICES[service]}.{operation}", method))
                    patched.append((backend, method_name))
        yield counter
    finally:
        for backend, method_name in patched:
            with contextlib.suppress(AttributeError):
                delattr(backend, method_name)
