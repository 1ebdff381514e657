"""AWS played by moto, in-process (``mock_aws``) or as a server on 127.0.0.1, for one world.

Also what a world does to the process around it: the environment it sets and restores, and the
function's cold start after it (no clients or credentials of a moto that is gone).
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING

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


@contextlib.contextmanager
def new_container_after() -> Iterator[None]:
    """After the world, the function starts cold: no clients or credentials of this moto."""
    try:
        yield
    finally:
        app = sys.modules.get("rotation_handler.app")
        if app is not None:
            app.reset_runtime()


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
