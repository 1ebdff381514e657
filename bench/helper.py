"""The app-side client helper: GetSecretValue calls per 1,000 sends and the time it adds per send.

The helper (``ses_smtp_rotator.client.get_smtp_credentials(secret_id, *, max_age, client)``) is
looked up at run time: when it is missing or fails, the row says so instead of a figure.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sandbox.calls import count_calls

if TYPE_CHECKING:
    from collections.abc import Callable

    from sandbox.world import World

MODULE = "ses_smtp_rotator.client"


class HelperUnavailableError(RuntimeError):
    """The client helper does not exist (yet) or failed; nothing was measured."""


def load_helper(module: str = MODULE) -> Callable[..., Any]:
    """Return ``get_smtp_credentials``.

    Raises
    ------
    HelperUnavailableError
        The module or the function does not exist.
    """
    try:
        loaded = importlib.import_module(module)
    except ImportError as err:
        msg = "client helper not available"
        raise HelperUnavailableError(msg) from err
    function = getattr(loaded, "get_smtp_credentials", None)
    if not callable(function):
        msg = "client helper not available (no get_smtp_credentials)"
        raise HelperUnavailableError(msg)
    return function  # type: ignore[no-any-return]


@dataclass(frozen=True, kw_only=True)
class HelperCost:
    """What the helper costs an app that sends ``sends`` messages within ``max_age``."""

    sends: int
    max_age: float
    get_secret_value: int
    all_calls: dict[str, int]
    added_microseconds: float


def _per_call_seconds(function: Callable[[], object], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        function()
    return (time.perf_counter() - started) / count


def measure_helper(world: World, *, sends: int = 1000, max_age: float = 300.0) -> HelperCost:
    """Resolve credentials ``sends`` times through the helper, counting calls and timing each.

    Raises
    ------
    HelperUnavailableError
        The helper is missing or raised (the message names the exception type only).
    """
    get = load_helper()

    def resolve() -> object:
        return get(world.secret_arn, max_age=max_age, client=world.sm)

    hard_coded = object()
    try:
        with count_calls(account_id=world.driver.account_id, region=world.region) as calls:
            helper_seconds = _per_call_seconds(resolve, sends)
    except Exception as err:
        msg = f"client helper failed: {type(err).__name__}"
        raise HelperUnavailableError(msg) from err
    baseline_seconds = _per_call_seconds(lambda: hard_coded, sends)
    return HelperCost(
        sends=sends,
        max_age=max_age,
        get_secret_value=calls["SecretsManager.GetSecretValue"],
        all_calls=dict(calls),
        added_microseconds=(helper_seconds - baseline_seconds) * 1e6,
    )
