"""AWS played by moto, in-process (``mock_aws``) or as a server on 127.0.0.1, for one world.

Also what a world does to the process around it: the environment it sets and restores, and the
function's cold start after it (no clients or credentials of a moto that is gone).
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from moto import mock_aws
from moto.core.base_backend import BackendDict
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

from sandbox import moto_fidelity, rotation_service

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, MutableMapping


@contextlib.contextmanager
def patched_env(
    environ: MutableMapping[str, str], values: Mapping[str, str | None]
) -> Iterator[None]:
    """Set (or, for ``None``, remove) ``values`` in ``environ`` inside the block."""
    saved = {name: environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                environ.pop(name, None)
            else:
                environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                environ.pop(name, None)
            else:
                environ[name] = value


def cold_start() -> None:
    """Make the function's next run start cold, as in a new execution environment.

    Lambda starts new environments when the function's configuration changes; the function
    itself never rereads its variables. So a world calls this when it starts and stops, and a
    test calls it (:meth:`sandbox.world.World.cold_start`) after changing a variable.
    """
    app = sys.modules.get("rotation_handler.app")
    if app is not None:
        app.reset_runtime()


@contextlib.contextmanager
def new_container_around() -> Iterator[None]:
    """Within the world, the function starts cold; after it, it has no clients of this moto."""
    cold_start()
    try:
        yield
    finally:
        cold_start()


@dataclass
class FunctionEnvironment:
    """Another deployment's function in this process: its own variables and cold-start runtime.

    Each run swaps them in for the run's length: two deployments never share clients or
    settings, as two Lambda functions never share an environment.
    """

    variables: dict[str, str | None]
    _runtime: Any = None

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Run the block as this function: its variables, and its runtime (built on first use)."""
        from rotation_handler import app  # noqa: PLC0415 - loads with the world's environment

        with patched_env(os.environ, self.variables):
            saved = app._runtime  # noqa: SLF001 - the per-environment cache, swapped per run
            app._runtime = self._runtime  # noqa: SLF001
            try:
                yield
            finally:
                self._runtime = app._runtime  # noqa: SLF001
                app._runtime = saved  # noqa: SLF001


@contextlib.contextmanager
def aws(*, moto_server: bool, environ: MutableMapping[str, str]) -> Iterator[str | None]:
    """Start moto in-process (mock_aws) or as a server on 127.0.0.1; yield its endpoint URL."""
    moto_fidelity.install()
    rotation_service.install()
    if not moto_server:
        with patched_env(environ, {"AWS_ENDPOINT_URL": None}), mock_aws():
            yield None
        return
    # moto's server keeps its state in this process's backends and nothing resets them when it
    # stops: start from an empty AWS and leave one, as mock_aws does, so worlds never share state.
    BackendDict.reset()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        with patched_env(environ, {"AWS_ENDPOINT_URL": url}):
            yield url
    finally:
        server.stop()
        BackendDict.reset()
