"""Cold start: a fresh interpreter importing the function and building its clients, vs boto3.

Each sample is the wall time of a whole ``python -c`` subprocess (interpreter start included), in
the environment a Lambda has: region, credentials in variables, no shared config files. The two
kinds are interleaved so that drift of the machine affects both alike.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.stats import Summary, summarize

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

REPO = Path(__file__).resolve().parent.parent
APP_CODE = "from rotation_handler import app\napp.runtime()\n"
# The same Config as rotation_handler.app._BOTO_CONFIG (tests/unit/test_bench.py keeps them equal).
BARE_CODE = """\
import boto3
from botocore.config import Config
config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=20)
session = boto3.session.Session(region_name="us-east-1")
session.client("secretsmanager", config=config)
session.client("iam", config=config)
"""
_TIMEOUT_SECONDS = 60


def lambda_env(src: Path = REPO / "src") -> dict[str, str]:
    """Return the environment of a Lambda function (fake credentials), with ``src`` importable."""
    missing = str(REPO / "bench" / "no-such-file")
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(src),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_CONFIG_FILE": missing,
        "AWS_SHARED_CREDENTIALS_FILE": missing,
        "AWS_LAMBDA_FUNCTION_NAME": "ses-smtp-rotation",
    }


def run_python(code: str, *, env: Mapping[str, str], options: Sequence[str] = ()) -> str:
    """Run ``code`` in a fresh interpreter; return its stderr (stdout is discarded)."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, *options, "-c", code],
        env=dict(env),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=_TIMEOUT_SECONDS,
        check=True,
    )
    return done.stderr


def time_python(code: str, *, env: Mapping[str, str]) -> float:
    """Wall seconds of one fresh interpreter running ``code``."""
    started = time.perf_counter()
    run_python(code, env=env)
    return time.perf_counter() - started


@dataclass(frozen=True, kw_only=True)
class ColdStart:
    """Samples of both kinds and the ratio of their medians."""

    app: Summary
    bare: Summary
    pairs: Summary  # function / bare of each interleaved pair: robust to the machine's drift

    @property
    def ratio(self) -> float:
        """Median of the function's cold start over the median of bare boto3's."""
        return self.app.median / self.bare.median


def measure_cold_start(repeats: int) -> ColdStart:
    """Time ``repeats`` interleaved pairs (after one untimed pair that warms the page cache)."""
    env = lambda_env()
    time_python(APP_CODE, env=env)
    time_python(BARE_CODE, env=env)
    app: list[float] = []
    bare: list[float] = []
    for _ in range(repeats):
        app.append(time_python(APP_CODE, env=env))
        bare.append(time_python(BARE_CODE, env=env))
    pairs = [a / b for a, b in zip(app, bare, strict=True)]
    return ColdStart(app=summarize(app), bare=summarize(bare), pairs=summarize(pairs))


def parse_importtime(stderr: str) -> dict[str, int]:
    """Map module -> self import time in microseconds, from ``python -X importtime`` output."""
    found: dict[str, int] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        fields = line.removeprefix("import time:").split("|")
        if len(fields) == 3:  # noqa: PLR2004 - self | cumulative | module
            found[fields[2].strip()] = int(fields[0])
    return found


def extra_import_costs(
    app: Mapping[str, int], bare: Mapping[str, int], top: int = 6
) -> list[tuple[str, float]]:
    """Return top-level packages imported beyond bare boto3, by self time (ms), largest first."""
    by_package: collections.Counter[str] = collections.Counter()
    for module, micros in app.items():
        if module not in bare:
            by_package[module.split(".")[0]] += micros
    return [(name, micros / 1000) for name, micros in by_package.most_common(top)]


def import_costs(top: int = 6) -> list[tuple[str, float]]:
    """Measure once, with ``-X importtime``, what the function imports beyond bare boto3."""
    env = lambda_env()
    app = parse_importtime(run_python(APP_CODE, env=env, options=("-X", "importtime")))
    bare = parse_importtime(run_python(BARE_CODE, env=env, options=("-X", "importtime")))
    return extra_import_costs(app, bare, top)
