"""The package benchmark's logic: the layer's share, the import child's checks, the rows.

Nothing here builds or times anything: ``make bench`` does (``python -m bench --package-only``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import imports, package, package_report, run


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    return root


CODE = {"rotation_handler/app.py": b"a" * 100, "requirements.txt": b"# none\n"}
POWERTOOLS = {
    "aws_lambda_powertools/__init__.py": b"p" * 1000,
    "aws_lambda_powertools-3.37.0.dist-info/RECORD": b"r" * 10,
    "jmespath/__init__.py": b"j" * 50,
    "typing_extensions.py": b"t" * 40,
}


@pytest.fixture
def builds(tmp_path: Path) -> tuple[Path, Path]:
    """A default artifact (our code) and a bundled one (our code and Powertools)."""
    default = _tree(tmp_path / "default", CODE)
    bundled = _tree(tmp_path / "bundled", CODE | POWERTOOLS)
    return default, bundled


def test_the_layer_is_what_the_bundled_build_has_and_the_default_lacks(
    builds: tuple[Path, Path], tmp_path: Path
) -> None:
    default, bundled = builds
    # WHEN the layer is simulated from both builds
    python = package.simulate_layer(bundled, default, tmp_path / "layer")
    # THEN it holds exactly Powertools' entries, under python/ as a layer's zip has them
    assert package.layer_entries(bundled, default) == sorted(
        {name.split("/")[0] for name in POWERTOOLS}
    )
    assert python == tmp_path / "layer" / "python"
    assert package.unzipped_bytes(python) == sum(len(c) for c in POWERTOOLS.values())
    assert package.unzipped_bytes(default) + package.unzipped_bytes(python) == (
        package.unzipped_bytes(bundled)
    )
    package.check_layer_entries(package.layer_entries(bundled, default))


@pytest.mark.parametrize(
    "entries",
    [
        [],  # the manifests do not differ: the default build bundles Powertools too
        ["aws_lambda_powertools", "jmespath"],  # typing_extensions went missing
        ["aws_lambda_powertools", "jmespath", "typing_extensions.py", "requests"],
    ],
)
def test_a_layer_share_other_than_powertools_stops_the_measurement(entries: list[str]) -> None:
    with pytest.raises(package.PackageUnavailableError, match="not Powertools"):
        package.check_layer_entries(entries)


def test_both_builds_are_run_and_the_bundled_one_reads_the_bundled_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a sam build that bundles Powertools only when given the bundled manifest
    calls: list[Path | None] = []

    def fake_build(workdir: Path, manifest: Path | None = None) -> Path:
        calls.append(manifest)
        files = CODE | (POWERTOOLS if manifest == package.BUNDLED_MANIFEST else {})
        return _tree(workdir / "RotationFunction", files)

    monkeypatch.setattr(package, "sam_build", fake_build)
    # WHEN both are built / THEN the layer is simulated from their difference
    built = package.build_both(tmp_path)
    assert calls == [None, package.BUNDLED_MANIFEST]
    assert (built.layer_python / "aws_lambda_powertools" / "__init__.py").is_file()
    assert not (built.default / "aws_lambda_powertools").exists()
    size = package.measure_package(built)
    assert size.default.unzipped == sum(len(c) for c in CODE.values())
    assert size.bundled.unzipped == size.default.unzipped + size.layer.unzipped
    assert 0 < size.default.zipped < size.bundled.zipped
    assert package.BUNDLED_MANIFEST.is_file()


def test_the_variants_put_directories_in_lambdas_order(tmp_path: Path) -> None:
    default, bundled, layer, runtime = (tmp_path / n for n in ("d", "b", "opt/python", "rt"))
    layered, alone = imports.variants(default, bundled, layer, runtime)
    # THEN the code comes first (/var/task), then the layer (/opt/python), then the runtime's boto3
    assert layered.paths == (default, layer, runtime)
    assert layered.powertools_from == layer
    assert alone.paths == (bundled, runtime)
    assert alone.powertools_from == bundled


def test_the_import_child_must_have_taken_powertools_from_the_variant(tmp_path: Path) -> None:
    (layered, _) = imports.variants(tmp_path / "d", tmp_path / "b", tmp_path / "l", tmp_path / "r")
    inside = tmp_path / "l" / "aws_lambda_powertools" / "__init__.py"
    assert imports.parse_output(f"0.25\n{inside}\n", layered) == pytest.approx(0.25)
    # WHEN Powertools came from elsewhere (a leaked site-packages) / THEN the sample is refused
    elsewhere = tmp_path / "site-packages" / "aws_lambda_powertools" / "__init__.py"
    with pytest.raises(imports.ImportCheckError, match="Powertools came from"):
        imports.parse_output(f"0.25\n{elsewhere}\n", layered)
    with pytest.raises(imports.ImportCheckError, match="unexpected output"):
        imports.parse_output("0.25\n", layered)


def test_the_import_code_puts_only_the_variants_paths_first() -> None:
    code = imports.IMPORT_CODE.format(paths=["/var/task", "/opt/python"])
    assert "sys.path[:0] = ['/var/task', '/opt/python']" in code
    compile(code, "<import child>", "exec")


def test_the_runtime_is_linked_module_by_module(tmp_path: Path) -> None:
    # GIVEN a package (json) and a single-file module (csv) of this interpreter
    runtime = imports.link_runtime(tmp_path / "rt", ("json", "csv"))
    # THEN each is linked under its own name, and nothing else is there
    assert sorted(p.name for p in runtime.iterdir()) == ["csv.py", "json"]
    assert (runtime / "json" / "__init__.py").is_file()
    with pytest.raises(imports.ImportCheckError, match="not importable"):
        imports.link_runtime(tmp_path / "rt2", ("no_such_module_here",))


def test_imports_are_interleaved_and_the_warming_round_is_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen = imports.variants(tmp_path / "d", tmp_path / "b", tmp_path / "l", tmp_path / "r")
    order: list[str] = []
    seconds = iter(range(100))

    def fake_time(python: Path, variant: imports.Variant, env: object, cwd: Path) -> float:
        del python, env, cwd
        order.append(variant.name)
        return float(next(seconds))

    monkeypatch.setattr(imports, "time_import", fake_time)
    samples = imports.measure_imports(Path("python3.13"), chosen, repeats=2)
    assert order == ["layer", "bundled"] * 3
    assert samples == {"layer": [2.0, 4.0], "bundled": [3.0, 5.0]}


def _size(unzipped: int) -> package.Size:
    return package.Size(unzipped=unzipped, zipped=unzipped // 3)


@pytest.mark.parametrize(("default_bytes", "mark"), [(300_000, "met"), (2_000_001, "missed")])
def test_only_the_default_package_is_judged_against_2_mb(default_bytes: int, mark: str) -> None:
    size = package.PackageSize(
        default=_size(default_bytes),
        bundled=_size(4_100_000),
        layer=_size(3_800_000),
        layer_entries=[
            "aws_lambda_powertools",
            "aws_lambda_powertools-3.37.0.dist-info",
            "jmespath",
        ],
        largest={},
    )
    default, bundled, layer = package_report.size_rows(size)
    assert default.mark == mark
    assert default.goal == "<= 2 MB unzipped"
    assert bundled.mark == layer.mark == "n/a"
    assert bundled.figure.startswith("4.10 MB unzipped")
    assert layer.figure.endswith("(aws_lambda_powertools, jmespath)")


def test_import_rows_set_each_variant_beside_the_other() -> None:
    # GIVEN pairs where the layer took half the time twice and the same time once
    rows, data = package_report.import_rows({"layer": [0.2, 0.2, 0.3], "bundled": [0.4, 0.4, 0.3]})
    # THEN each median is shown, and the pairwise ratio's median is a half
    assert [row.figure.split(" ")[0] for row in rows[:2]] == ["0.200", "0.400"]
    assert data["pairwise_ratio"]["median"] == pytest.approx(0.5)
    assert "median 0.50x" in rows[2].figure


def test_package_only_is_a_selector_of_its_own() -> None:
    assert run.build_parser().parse_args(["--package-only"]).package_only
    with pytest.raises(SystemExit):
        run.build_parser().parse_args(["--package-only", "--fleet-only"])
