from __future__ import annotations

import contextlib
import secrets
from typing import TYPE_CHECKING, Any

import pytest

from sandbox.world import World, local_world
from tests import leakscan

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture
def make_world(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> Iterator[Callable[..., World]]:
    """Start local worlds on demand; after the test, scan everything for leaked secrets.

    The scan covers what the test printed or logged (stdout/stderr at the file-descriptor level,
    where Powertools writes its JSON logs, the lines ``RotateSecret``'s runs sent to the function's
    log group, and the logging records) and the text of every
    exception the function raised, against every secret key, SMTP password, secret string and
    RotationToken the world created (its member accounts' too), plus a canary planted in the
    secret's unknown keys.
    """
    canary = f"canary-{secrets.token_hex(8)}"
    worlds: list[World] = []
    material: set[str] = {canary}
    with contextlib.ExitStack() as stack:

        def factory(**kwargs: Any) -> World:  # noqa: ANN401 - forwarded to local_world
            kwargs["bootstrap"] = {"app_canary": canary, **kwargs.get("bootstrap", {})}
            world = stack.enter_context(local_world(**kwargs))
            worlds.append(world)
            return world

        yield factory
        drivers = [d for w in worlds for d in (w.driver, *(m.driver for m in w.members))]
        for world in worlds:
            material |= world.secret_material()
        for driver in drivers:
            material |= set(driver.rotation_tokens)
        errors = [record.error for driver in drivers for record in driver.history if record.error]
        # The function's lines of RotateSecret's runs went to the log group, not to stdout.
        logged = [line for world in worlds if world.service for line in world.service.log_lines]
    out, err = capfd.readouterr()
    texts = [out, err, caplog.text, *(leakscan.exception_text(error) for error in errors)]
    texts += logged
    leaked = leakscan.find_leaks(texts, material)
    assert not leaked, f"secret material leaked into logs or errors (prefixes): {leaked}"


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    """A local world with default settings."""
    return make_world()
