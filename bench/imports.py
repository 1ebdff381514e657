"""Cold start of each package variant: ``import rotation_handler.app`` in a fresh python3.13.

What Lambda's python3.13 runtime would import, as near as this machine can show it: only the
artifact of ``sam build`` on ``sys.path`` first (``/var/task``), then for the default build the
simulated Powertools layer (``/opt/python``), then the runtime's own boto3 (here the bench's boto3
and its dependencies, linked into one directory so that nothing else of the environment leaks in).
The interpreter runs isolated (``-I -S``: no site-packages, no environment ``PYTHON*`` variables)
and writes no bytecode (``-B``): Lambda's code and layer directories are read-only, and neither
artifact ships ``.pyc`` files, so each cold start compiles what it imports, as here.

The figure is the import alone, timed inside the child: it leaves out the interpreter's start
(the same for both) and what only Lambda does (fetching and unpacking the zip and the layer).
The two variants are interleaved so that drift of the machine affects both alike.
"""

from __future__ import annotations

import importlib.util
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.coldstart import lambda_env

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

# boto3 and what it imports: the Lambda runtime provides these, so neither variant ships them.
RUNTIME_MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
# Prints the import's seconds, then where Powertools came from (checked against the variant).
IMPORT_CODE = """\
import sys, time
sys.path[:0] = {paths!r}
started = time.perf_counter()
import rotation_handler.app
elapsed = time.perf_counter() - started
print(elapsed)
print(sys.modules["aws_lambda_powertools"].__file__)
"""
_TIMEOUT_SECONDS = 60


class ImportCheckError(RuntimeError):
    """The child imported Powertools from somewhere else than the variant provides it."""


def link_runtime(dest: Path, modules: Sequence[str] = RUNTIME_MODULES) -> Path:
    """Link each of ``modules``, as this interpreter finds it, into ``dest``; return ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            msg = f"{name} is not importable here: the runtime's boto3 cannot be simulated"
            raise ImportCheckError(msg)
        origin = Path(spec.origin)
        # A package links its directory; a single-module distribution (six) links its file.
        source = origin.parent if origin.name == "__init__.py" else origin
        (dest / source.name).symlink_to(source, target_is_directory=source.is_dir())
    return dest


@dataclass(frozen=True, kw_only=True)
class Variant:
    """One way to deploy: the ``sys.path`` entries in Lambda's order, and who has Powertools."""

    name: str
    paths: tuple[Path, ...]
    powertools_from: Path


def variants(default: Path, bundled: Path, layer_python: Path, runtime: Path) -> list[Variant]:
    """Return the default build with the layer, and the bundled build without one."""
    return [
        Variant(name="layer", paths=(default, layer_python, runtime), powertools_from=layer_python),
        Variant(name="bundled", paths=(bundled, runtime), powertools_from=bundled),
    ]


def parse_output(stdout: str, variant: Variant) -> float:
    """Return the import's seconds; check Powertools came from where ``variant`` provides it.

    Raises
    ------
    ImportCheckError
        Powertools was imported from another directory (the measurement would be of the wrong
        variant), or the output is not the two lines the child prints.
    """
    lines = stdout.strip().splitlines()
    if len(lines) != 2:  # noqa: PLR2004 - seconds, then Powertools' file
        msg = f"unexpected output of the import child: {stdout!r}"
        raise ImportCheckError(msg)
    seconds, origin = float(lines[0]), Path(lines[1])
    if not origin.is_relative_to(variant.powertools_from):
        msg = f"{variant.name}: Powertools came from {origin}, not {variant.powertools_from}"
        raise ImportCheckError(msg)
    return seconds


def time_import(python: Path, variant: Variant, env: Mapping[str, str], cwd: Path) -> float:
    """Seconds one fresh isolated interpreter takes to import the function in ``variant``."""
    code = IMPORT_CODE.format(paths=[str(path) for path in variant.paths])
    done = subprocess.run(  # noqa: S603 - a python3.13 we found, code written here
        [str(python), "-I", "-S", "-B", "-c", code],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_SECONDS,
        check=True,
    )
    return parse_output(done.stdout, variant)


def measure_imports(
    python: Path, chosen: Sequence[Variant], repeats: int
) -> dict[str, list[float]]:
    """Time ``repeats`` interleaved rounds of every variant, after one untimed warming round."""
    env = {key: value for key, value in lambda_env().items() if key != "PYTHONPATH"}
    cwd = chosen[0].paths[0].parent
    samples: dict[str, list[float]] = {variant.name: [] for variant in chosen}
    for round_number in range(repeats + 1):
        for variant in chosen:
            seconds = time_import(python, variant, env, cwd)
            if round_number:
                samples[variant.name].append(seconds)
    return samples
