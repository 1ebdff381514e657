"""Deployment package size: the ``sam build`` artifacts, unzipped and zipped (deflate).

Two builds, as ``make build`` and ``make build-bundled`` make them: the default one, which leaves
Powertools to AWS's published layer (``src/requirements.txt``), and the bundled one
(``src/requirements-bundled.txt``). The layer itself cannot be fetched here (no AWS), so it is
simulated from the locked wheels: what the bundled artifact holds and the default one does not,
under ``python/`` as in a layer's zip (Lambda puts ``/opt/python`` on ``sys.path``).

``sam build`` runs into a temporary build and cache directory, so a benchmark never races an
engineer's ``make template`` over ``.aws-sam/``; the artifact is the same
(``<build>/RotationFunction/``).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parent.parent
BUNDLED_MANIFEST = REPO / "src" / "requirements-bundled.txt"
# What the public Powertools Lambda layer provides: Powertools and the dependencies it pulls in.
POWERTOOLS_LAYER_PARTS = ("aws_lambda_powertools", "jmespath", "typing_extensions")
_SAM_TIMEOUT_SECONDS = 600


class PackageUnavailableError(RuntimeError):
    """The artifact could not be built here (no sam, no python3.13, or the build failed)."""


def python313_dir() -> Path | None:
    """Return the directory of a python3.13 for ``sam build`` (``PY313_DIR`` first)."""
    # pyenv's shims come last: a shim exists even when no 3.13 is installed.
    candidates = [os.environ.get("PY313_DIR", "")]
    candidates += sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.13*/bin"))
    found = shutil.which("python3.13")
    candidates += [str(Path(found).parent)] if found else []
    return next((Path(c) for c in candidates if c and (Path(c) / "python3.13").exists()), None)


def sam_build(workdir: Path, manifest: Path | None = None) -> Path:
    """Run ``sam build`` into ``workdir`` (with ``--manifest``); return the function's artifact.

    Raises
    ------
    PackageUnavailableError
        sam or python3.13 is missing, or the build failed (its output's last line says why).
    """
    sam = REPO / ".venv-sam" / "bin" / "sam"
    py313 = python313_dir()
    if not sam.exists() or py313 is None:
        msg = "needs .venv-sam (make setup) and python3.13 (PY313_DIR)"
        raise PackageUnavailableError(msg)
    env = {
        **os.environ,
        "SAM_CLI_TELEMETRY": "0",
        "PATH": f"{py313}{os.pathsep}{os.environ['PATH']}",
    }
    command = [
        str(sam),
        "build",
        "--build-dir",
        str(workdir / "build"),
        "--cache-dir",
        str(workdir / "cache"),
        *(["--manifest", str(manifest)] if manifest else []),
    ]
    done = subprocess.run(  # noqa: S603 - the project's own sam
        command,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=_SAM_TIMEOUT_SECONDS,
        check=False,
    )
    artifact = workdir / "build" / "RotationFunction"
    if done.returncode != 0 or not artifact.is_dir():
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        msg = f"sam build failed: {last[0]}"
        raise PackageUnavailableError(msg)
    return artifact


def _files(root: Path, exclude: tuple[str, ...]) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        top = path.relative_to(root).parts[0]
        if path.is_file() and not any(top.startswith(prefix) for prefix in exclude):
            yield path


def unzipped_bytes(root: Path, exclude: tuple[str, ...] = ()) -> int:
    """Total size of the files under ``root``, less top-level entries starting with ``exclude``."""
    return sum(path.stat().st_size for path in _files(root, exclude))


def zipped_bytes(root: Path, exclude: tuple[str, ...] = ()) -> int:
    """Size of a deflate zip of the same files (what Lambda receives)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in _files(root, exclude):
            archive.write(path, path.relative_to(root).as_posix())
    return len(buffer.getvalue())


def _entry_bytes(entry: Path) -> int:
    if entry.is_file():
        return entry.stat().st_size
    return sum(path.stat().st_size for path in entry.rglob("*") if path.is_file())


def top_entries(root: Path, top: int = 5) -> dict[str, int]:
    """Return the largest top-level entries of the artifact, bytes each, largest first."""
    sizes = sorted(((_entry_bytes(e), e.name) for e in root.iterdir()), reverse=True)
    return {name: size for size, name in sizes[:top]}


def layer_entries(bundled: Path, default: Path) -> list[str]:
    """Top-level entries of the bundled artifact that the default one lacks: the layer's share."""
    return sorted(entry.name for entry in bundled.iterdir() if not (default / entry.name).exists())


def simulate_layer(bundled: Path, default: Path, layer: Path) -> Path:
    """Copy the layer's share of ``bundled`` into ``layer/python``; return that directory."""
    python = layer / "python"
    python.mkdir(parents=True)
    for name in layer_entries(bundled, default):
        source = bundled / name
        if source.is_dir():
            shutil.copytree(source, python / name)
        else:
            shutil.copy2(source, python / name)
    return python


def check_layer_entries(entries: list[str]) -> None:
    """Check the layer's share is what AWS's layer provides, so the default build relies on it.

    Raises
    ------
    PackageUnavailableError
        A part of Powertools is missing from the share (the default build would bundle it, or
        the bundled one would lack it), or the share holds more than Powertools and its parts.
    """
    missing = [p for p in POWERTOOLS_LAYER_PARTS if not any(e.startswith(p) for e in entries)]
    extra = [e for e in entries if not e.startswith(POWERTOOLS_LAYER_PARTS)]
    if missing or extra:
        msg = f"the bundled build differs from the default one by {entries}, not Powertools"
        raise PackageUnavailableError(msg)


@dataclass(frozen=True, kw_only=True)
class Size:
    """One directory's size, unzipped and as a deflate zip."""

    unzipped: int
    zipped: int

    @classmethod
    def of(cls, root: Path) -> Size:
        """Measure ``root``."""
        return cls(unzipped=unzipped_bytes(root), zipped=zipped_bytes(root))


@dataclass(frozen=True, kw_only=True)
class Builds:
    """Both artifacts and the simulated layer's ``python`` directory."""

    default: Path
    bundled: Path
    layer_python: Path


def build_both(workdir: Path) -> Builds:
    """Run both builds into ``workdir`` and simulate the layer from them.

    Raises
    ------
    PackageUnavailableError
        A build could not run here.
    """
    default = sam_build(workdir / "default")
    bundled = sam_build(workdir / "bundled", BUNDLED_MANIFEST)
    check_layer_entries(layer_entries(bundled, default))
    return Builds(
        default=default,
        bundled=bundled,
        layer_python=simulate_layer(bundled, default, workdir / "layer"),
    )


@dataclass(frozen=True, kw_only=True)
class PackageSize:
    """Sizes of the default artifact (layer), the bundled one and the simulated layer."""

    default: Size
    bundled: Size
    layer: Size
    layer_entries: list[str]
    largest: dict[str, int]


def measure_package(builds: Builds) -> PackageSize:
    """Measure both artifacts and the simulated layer."""
    return PackageSize(
        default=Size.of(builds.default),
        bundled=Size.of(builds.bundled),
        layer=Size.of(builds.layer_python),
        layer_entries=layer_entries(builds.bundled, builds.default),
        largest=top_entries(builds.bundled),
    )
