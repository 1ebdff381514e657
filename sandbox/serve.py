"""``python -m sandbox.serve``: moto's server and the SES-like SMTP server in one process.

One process, because the SMTP server reads IAM keys from moto's in-process backend.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import TYPE_CHECKING

from sandbox.ses_smtp import SesSmtpServer

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType

_BIND = "127.0.0.1"


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.serve", description="moto + an SES-like SMTP server"
    )
    parser.add_argument("--region", default="us-east-1", help="SES region played (us-east-1)")
    parser.add_argument("--delay", type=float, default=0.0, help="propagation delay, seconds")
    parser.add_argument("--implicit-tls", action="store_true", help="also listen with TLS")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run moto's server and the SMTP server in one process until Ctrl-C or SIGTERM.

    Prints ``AWS_ENDPOINT_URL``, the SMTP host and port(s), ``SSL_CERT_FILE`` and the region.
    """
    args = _parse_args(argv)
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - only this entry point needs it

    from sandbox import moto_fidelity  # noqa: PLC0415 - imports moto, as the line above

    moto_fidelity.install()

    stopped = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stopped.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    moto_server = ThreadedMotoServer(ip_address=_BIND, port=0, verbose=False)
    moto_server.start()
    smtp = SesSmtpServer(
        region=args.region, propagation_delay=args.delay, implicit_tls=args.implicit_tls
    )
    try:
        with smtp:
            host, port = moto_server.get_host_and_port()
            _announce(f"http://{host}:{port}", smtp)
            while not stopped.wait(0.2):
                pass
    finally:
        moto_server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _announce(endpoint: str, smtp: SesSmtpServer) -> None:
    lines = [
        f"AWS_ENDPOINT_URL={endpoint}",
        f"SMTP_HOST={smtp.host}",
        f"SMTP_PORT={smtp.port}",
        *([f"SMTP_TLS_PORT={smtp.tls_port}"] if smtp.tls_port else []),
        f"SSL_CERT_FILE={smtp.ca_file}",
        f"SES_REGION={smtp.region}",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(main())
