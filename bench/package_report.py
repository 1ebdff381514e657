"""The package rows of ``make bench``: both builds' sizes and their cold starts side by side."""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import imports, package
from bench.report import Goal, Row, judged
from bench.stats import summarize

MB = 1_000_000
PACKAGE_GOAL = Goal(limit=2 * MB, text="<= 2 MB unzipped")
Section = tuple[list[Row], dict[str, Any]]


def size_rows(size: package.PackageSize) -> list[Row]:
    """Judge the default package against the goal; show the bundled one and the layer beside it."""
    # The layer's modules, without the metadata directories their wheels bring along.
    modules = [e for e in size.layer_entries if not e.endswith((".dist-info", ".data"))]
    return [
        judged(
            "Deployment package, Powertools from AWS's layer (make build, the default)",
            f"{size.default.unzipped / MB:.2f} MB unzipped, "
            f"{size.default.zipped / MB:.2f} MB zipped",
            value=size.default.unzipped,
            goal=PACKAGE_GOAL,
        ),
        Row(
            measure="Deployment package, Powertools bundled (make build-bundled, no layer)",
            figure=f"{size.bundled.unzipped / MB:.2f} MB unzipped, "
            f"{size.bundled.zipped / MB:.2f} MB zipped",
        ),
        Row(
            measure="Powertools layer, simulated from the locked wheels (not in the package)",
            figure=f"{size.layer.unzipped / MB:.2f} MB unzipped, "
            f"{size.layer.zipped / MB:.2f} MB zipped ({', '.join(modules)})",
        ),
    ]


def import_rows(samples: dict[str, list[float]]) -> Section:
    """Each variant's import time, and the layer's over the bundled one's per interleaved pair."""
    layer, bundled = summarize(samples["layer"]), summarize(samples["bundled"])
    pairs = summarize([a / b for a, b in zip(samples["layer"], samples["bundled"], strict=True)])
    measure = "Cold start, import rotation_handler.app (python3.13, -I -S -B), {}"
    rows = [
        Row(measure=measure.format("with the layer"), figure=layer.text(" s", 3)),
        Row(measure=measure.format("bundled"), figure=bundled.text(" s", 3)),
        Row(
            measure="Cold start import, layer / bundled (pairwise)",
            figure=f"median {pairs.median:.2f}x, IQR {pairs.q1:.2f}-{pairs.q3:.2f}x",
        ),
    ]
    data = {
        "layer_seconds": layer.as_dict(),
        "bundled_seconds": bundled.as_dict(),
        "pairwise_ratio": pairs.as_dict(),
    }
    return rows, data


def package_rows(import_repeats: int) -> Section:
    """Build both variants, measure their sizes and cold starts, or say why it could not run."""
    with tempfile.TemporaryDirectory(prefix="bench-sam-") as tmp:
        try:
            builds = package.build_both(Path(tmp))
        except package.PackageUnavailableError as err:
            row = Row(measure="Deployment package size", figure=f"not measured: {err}")
            return [row], {"not_measured": str(err)}
        size = package.measure_package(builds)
        rows, data = size_rows(size), asdict(size)
        python = package.python313_dir()
        if python is None:  # sam_build found one, so this only guards the type
            return rows, data
        runtime = imports.link_runtime(Path(tmp) / "runtime")
        chosen = imports.variants(builds.default, builds.bundled, builds.layer_python, runtime)
        samples = imports.measure_imports(python / "python3.13", chosen, import_repeats)
    section_rows, data["cold_start_import"] = import_rows(samples)
    return rows + section_rows, data
