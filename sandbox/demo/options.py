"""The demo's options (``python -m sandbox.demo --help``) and their checks."""

from __future__ import annotations

import argparse
import re
from typing import Final

from sandbox.secrets_manager import STEPS

_RESTART_EVERY = 0.5  # the read-once daemon's restarts (a timer, a deploy), by default
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_GRACE = re.compile(r"^(0|[0-9]{1,2}s)$")


def _positive_float(text: str) -> float:
    value = float(text)
    if value < 0:
        msg = f"must be >= 0, not {text}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _grace(text: str) -> str:
    if not _GRACE.fullmatch(text):
        msg = f"must be 0 or seconds such as 2s, at most 99s (not {text})"
        raise argparse.ArgumentTypeError(msg)
    return text


def seconds(grace: str) -> float:
    """Return a ``--grace`` value in seconds."""
    return 0.0 if grace == "0" else float(grace[:-1]) * _UNIT_SECONDS[grace[-1]]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        msg = f"must be >= 1, not {text}"
        raise argparse.ArgumentTypeError(msg)
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the demo's command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.demo",
        description="Rotate SES SMTP credentials against a local AWS (moto) and SMTP server "
        "while an app keeps sending mail; exit 1 if a send fails or an invariant breaks.",
    )
    parser.add_argument(
        "--delay",
        type=_positive_float,
        default=2.0,
        help="seconds a new key is refused by the SMTP server (SES propagation; default 2)",
    )
    parser.add_argument(
        "--rotations", type=_positive_int, default=3, help="rotations to run (default 3)"
    )
    parser.add_argument(
        "--fail-once",
        choices=STEPS,
        metavar="STEP",
        help="make one AWS call of STEP fail in the first rotation (" + "|".join(STEPS) + ")",
    )
    parser.add_argument(
        "--interval",
        type=_positive_float,
        default=0.1,
        help="seconds between two of the app's sends (default 0.1)",
    )
    parser.add_argument(
        "--grace",
        type=_grace,
        default="2s",
        help="OLD_KEY_GRACE_PERIOD of the function (default 2s; the template's is 24h). 0 "
        "retires the old key at finishSecret: the read-once daemon then fails",
    )
    parser.add_argument(
        "--restart-every",
        type=_positive_float,
        default=_RESTART_EVERY,
        help="seconds between two starts of the read-once daemon, each reading the secret once "
        f"(default {_RESTART_EVERY:g})",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="also print the function's JSON logs and metrics"
    )
    return parser
