"""Deployment package size: the ``sam build`` artifact, unzipped and zipped (deflate).

``sam build`` runs into a temporary build and cache directory, so a benchmark never races an
engineer's ``make template`` over ``.aws-sam/``; the artifact is the same
(``<build>/RotationFunction/``).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parent.parent
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


def sam_build(workdir: Path) -> Path:
    """Run ``sam build`` into ``workdir``; return the function's artifact directory.

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


@dataclass(frozen=True, kw_only=True)
class PackageSize:
    """Sizes of the artifact as built (Powertools bundled) and without the layer's parts."""

    unzipped: int
    zipped: int
    layer_unzipped: int
    layer_zipped: int
    largest: dict[str, int]


def measure_package() -> PackageSize:
    """Build the artifact in a temporary directory and measure it.

    Raises
    ------
    PackageUnavailableError
        The artifact could not be built here.
    """
    with tempfile.TemporaryDirectory(prefix="bench-sam-") as tmp:
        artifact = sam_build(Path(tmp))
        return PackageSize(
            unzipped=unzipped_bytes(artifact),
            zipped=zipped_bytes(artifact),
            layer_unzipped=unzipped_bytes(artifact, POWERTOOLS_LAYER_PARTS),
            layer_zipped=zipped_bytes(artifact, POWERTOOLS_LAYER_PARTS),
            largest=top_entries(artifact),
        )
