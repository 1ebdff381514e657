"""The benchmark's pure pieces: summaries, goals, table, parsers, sizes (no timing asserted)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from bench import coldstart, machine, memory, package, path, plot, run
from bench.report import Goal, Row, judged, markdown_table, missed
from bench.stats import summarize
from rotation_handler import app

if TYPE_CHECKING:
    from pathlib import Path


def test_summary_has_median_and_spread() -> None:
    # GIVEN five samples WHEN summarized THEN median, extremes and quartiles are theirs
    summary = summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (summary.n, summary.median, summary.minimum, summary.maximum) == (5, 3.0, 1.0, 5.0)
    assert (summary.q1, summary.q3) == (2.0, 4.0)
    assert summary.text(" s", 1) == "3.0 s (min 1.0, max 5.0, n=5)"


def test_one_sample_has_no_spread_and_none_is_an_error() -> None:
    assert summarize([0.25]).text(" s") == "0.25 s (n=1)"
    with pytest.raises(ValueError, match="no samples"):
        summarize([])


@pytest.mark.parametrize(
    ("goal", "value", "mark"),
    [
        pytest.param(Goal(limit=0.5), 0.5, "met", id="at-the-limit"),
        pytest.param(Goal(limit=0.5), 0.51, "missed", id="over-the-limit"),
        pytest.param(Goal(limit=15, op="<"), 15, "missed", id="strict"),
        pytest.param(Goal(limit=1, op=">="), 2, "met", id="at-least"),
    ],
)
def test_goal_comparison(goal: Goal, value: float, mark: str) -> None:
    assert judged("m", "f", value=value, goal=goal).mark == mark


def test_table_shows_each_goal_beside_its_figure() -> None:
    # GIVEN a met, a missed and an unjudged row
    rows = [
        judged("Rotation overshoot, D = 0 s", "0.03 s", value=0.03, goal=Goal(limit=0.5)),
        judged("AWS calls", "19", value=19, goal=Goal(limit=15, text="<= 15")),
        Row(measure="AUTH | attempts", figure="6"),
    ]
    # WHEN formatted
    lines = markdown_table(rows).splitlines()
    # THEN one header, one separator and one line per row, pipes escaped, marks shown
    assert lines[0] == "| Measure | Figure | Goal | Result |"
    assert lines[2] == "| Rotation overshoot, D = 0 s | 0.03 s | <= 0.5 | ✅ met |"
    assert lines[3] == "| AWS calls | 19 | <= 15 | ❌ missed |"
    assert lines[4] == "| AUTH \\| attempts | 6 | — | — |"
    assert missed(rows) == ["AWS calls"]


def test_a_path_counts_crossings_between_modules_and_returns_into_entered_ones() -> None:
    # GIVEN calls in order: the runtime into app, app within itself, app to steps, steps to keys,
    # keys back to steps, steps back to app, and a library calling keys' hook (no caller in it)
    calls = [
        (None, "app"),
        ("app", "app"),
        ("app", "steps"),
        ("steps", "keys"),
        ("keys", "steps"),
        ("steps", "app"),
        (None, "keys"),
    ]
    # WHEN they are followed
    trace = path.follow(calls)
    # THEN the modules are those entered, in order; a call within a module crosses nothing; a
    # call from outside the package is no crossing; two crossings went back into entered modules
    assert trace.modules == ("app", "steps", "keys")
    assert (trace.entries, trace.returns) == (4, 2)
    # AND the row judges the number of modules against the goal of five
    row = run.path_row(trace)
    assert (row.mark, row.figure) == ("met", path.follow(calls).text())
    assert run.path_row(path.follow([(None, f"m{i}") for i in range(6)])).mark == "missed"


def test_calls_text_totals_by_service() -> None:
    calls = {"IAM.CreateAccessKey": 1, "SecretsManager.GetSecretValue": 7, "IAM.TagUser": 1}
    assert run.calls_text(calls) == "9 (IAM 2, SecretsManager 7)"


def test_baseline_cold_start_uses_the_functions_boto_config() -> None:
    # The ratio compares like with like only while the baseline builds the same Config.
    config = app._BOTO_CONFIG
    retries = dict(getattr(config, "retries", None) or {})
    # botocore rewrites max_attempts as total_max_attempts (one more) once a client is built.
    attempts = retries.get("max_attempts", retries.get("total_max_attempts", 0) - 1)
    assert (retries["mode"], attempts) == ("standard", 5)
    assert '"mode": "standard", "max_attempts": 5' in coldstart.BARE_CODE
    for option in ("connect_timeout", "read_timeout"):
        assert f"{option}={getattr(config, option)}" in coldstart.BARE_CODE


def test_importtime_parser_and_extra_costs() -> None:
    stderr = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       120 |        120 |   boto3\n"
        "import time:      3000 |       5000 | aws_lambda_powertools.logging\n"
        "import time:      2000 |       2000 |   aws_lambda_powertools\n"
        "import time:       500 |        500 | jmespath\n"
        "not an importtime line\n"
    )
    found = coldstart.parse_importtime(stderr)
    assert found["aws_lambda_powertools.logging"] == 3000
    costs = coldstart.extra_import_costs(found, {"boto3": 100})
    assert costs == [("aws_lambda_powertools", 5.0), ("jmespath", 0.5)]


def test_cpu_model_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Example CPU @ 2.0GHz\n", encoding="utf-8")
    assert machine.cpu_model(cpuinfo) == "Example CPU @ 2.0GHz"
    assert machine.cpu_model(tmp_path / "missing") is None
    assert {"python", "platform", "cpu_count", "cpu_model"} <= set(machine.describe())


def test_package_sizes_leave_out_the_layers_parts(tmp_path: Path) -> None:
    # GIVEN an artifact with our code and a bundled Powertools
    (tmp_path / "rotation_handler").mkdir()
    (tmp_path / "rotation_handler" / "app.py").write_bytes(b"x" * 100)
    (tmp_path / "aws_lambda_powertools").mkdir()
    (tmp_path / "aws_lambda_powertools" / "big.py").write_bytes(b"y" * 1000)
    (tmp_path / "jmespath-1.1.0.dist-info").mkdir()
    (tmp_path / "jmespath-1.1.0.dist-info" / "RECORD").write_bytes(b"z" * 10)
    # THEN sizes count everything, or everything but the layer's parts
    assert package.unzipped_bytes(tmp_path) == 1110
    assert package.unzipped_bytes(tmp_path, package.POWERTOOLS_LAYER_PARTS) == 100
    assert package.top_entries(tmp_path, top=1) == {"aws_lambda_powertools": 1000}
    zipped = package.zipped_bytes(tmp_path)
    assert 0 < zipped < 1110
    assert package.zipped_bytes(tmp_path, package.POWERTOOLS_LAYER_PARTS) < zipped


def test_zip_is_deflated(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"a" * 10_000)
    assert package.zipped_bytes(tmp_path) < 1_000


def test_memory_size_and_peak_rss_readers(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text("Globals:\n  Function:\n    MemorySize: 256\n", encoding="utf-8")
    assert memory.configured_memory(template) == 256
    template.write_text("Resources: {}\n", encoding="utf-8")
    assert memory.configured_memory(template) is None
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmHWM:\t   51864 kB\n", encoding="utf-8")
    assert memory.peak_rss_kib(status) == 51864
    assert memory.peak_rss_kib(tmp_path / "missing") > 0  # falls back to ru_maxrss


def test_polling_reference_is_up_to_one_interval_late() -> None:
    assert [plot.polling_worst_case(d) for d in (0, 3, 10)] == [5, 8, 15]


def test_parser_options(tmp_path: Path) -> None:
    args = run.build_parser().parse_args(["--quick", "--output", str(tmp_path)])
    assert args.quick
    assert args.output == tmp_path
    assert run.QUICK.cold_starts < run.FULL.cold_starts
