"""The fleet benchmark's pieces: the template's concurrency, growth, environments per thread."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from bench import fleet
from bench.fleet_report import fleet_rows, growth, per_rotation
from bench.report import markdown_table
from rotation_handler import app, versions
from rotation_handler.observability import metrics
from sandbox.environments import execution_environments
from sandbox.throttle import Limit

if TYPE_CHECKING:
    from pathlib import Path

    from mypy_boto3_iam import IAMClient

FLEET_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  FleetConcurrency:
    Type: Number
    Default: 7
Resources:
  FleetFunction:
    Type: AWS::Serverless::Function
    Properties:
      ReservedConcurrentExecutions: !Ref FleetConcurrency
      Policies:
        - Statement:
            Resource: !Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:user/ses-smtp/*"
            Condition: !If [Cond, !GetAtt X.Arn, !Ref "AWS::NoValue"]
"""


def test_concurrency_comes_from_the_fleet_template(tmp_path: Path) -> None:
    # GIVEN a fleet template with CloudFormation's short tags
    path = tmp_path / "fleet" / "template.yaml"
    path.parent.mkdir()
    path.write_text(FLEET_TEMPLATE, encoding="utf-8")
    # THEN C is its FleetConcurrency default, and the output says where it came from
    assert fleet.template_concurrency(path) == (7, "fleet/template.yaml FleetConcurrency default")
    # AND without the parameter's default, or without the file, C is 10 and says so
    path.write_text(FLEET_TEMPLATE.replace("    Default: 7\n", ""), encoding="utf-8")
    assert fleet.template_concurrency(path) == (
        10,
        "default 10: fleet/template.yaml has no FleetConcurrency default",
    )
    assert fleet.template_concurrency(tmp_path / "none" / "template.yaml") == (
        10,
        "default 10: none/template.yaml not found",
    )


def _round(number: int, *, apps: int, seconds: float, calls: int) -> fleet.Round:
    return fleet.Round(
        number=number,
        seconds=seconds,
        calls={"IAM.CreateAccessKey": apps, "SecretsManager.DescribeSecret": calls - apps},
        rotations=apps,
        completed=apps,
        retried=0,
        failed_attempts={},
        violations=[],
    )


def _run(apps: int, *, seconds: float, calls: int, violations: int = 0) -> fleet.FleetRun:
    steady = _round(2, apps=apps, seconds=seconds, calls=calls)
    steady.violations.extend(f"app-{n}: broken" for n in range(violations))
    return fleet.FleetRun(
        apps=apps,
        concurrency=10,
        environments=10,
        rounds=[_round(1, apps=apps, seconds=seconds / 2, calls=calls), steady],
        watched_calls=2 * calls,
        limits=(
            Limit(
                name="IAM CreateAccessKey", rate=10, operations=frozenset({"IAM.CreateAccessKey"})
            ),
            Limit(name="unused", rate=1, operations=frozenset({"IAM.GetUser"})),
        ),
        throttled={"IAM.ListAccessKeys": 4},
        absorbed={"IAM.ListAccessKeys": 4},
        exhausted={},
    )


def test_growth_is_linear_only_when_per_app_cost_stays_put() -> None:
    linear = [_run(25, seconds=2.5, calls=400), _run(200, seconds=21.0, calls=3200)]
    text, is_linear = growth(linear)
    assert is_linear
    assert "N = 25, 200" in text
    assert "calls per rotation 16.0, 16.0: linear in N" in text
    # per-app time doubling, or calls per rotation growing with N, is not linear
    assert not growth([_run(25, seconds=2.5, calls=400), _run(200, seconds=40.0, calls=3200)])[1]
    assert not growth([_run(25, seconds=2.5, calls=400), _run(200, seconds=20.0, calls=4000)])[1]


def test_rows_judge_violations_against_zero_and_show_calls_by_api() -> None:
    rows, data = fleet_rows(
        [_run(25, seconds=2.5, calls=400), _run(50, seconds=5.0, calls=800, violations=4)],
        concurrency=10,
        source="default 10: fleet/template.yaml not found",
    )
    table = markdown_table(rows)
    assert "| Fleet: function concurrency C | 10 (default 10: fleet/template.yaml not found) |" in (
        table
    )
    assert (
        "| Fleet N = 25, C = 10: invariant violations (2 rounds, all apps) | 0 | 0 | ✅ met |"
        in (table)
    )
    assert "invariant violations (2 rounds, all apps) | 4: app-0: broken;" in table
    assert "❌ missed" in table
    assert "16.0 calls (DescribeSecret 15, CreateAccessKey 1)" in table
    assert "the rates allow 10.0: IAM CreateAccessKey: 10/s ÷ 1 per rotation)" in table
    assert "4 of 4 throttled answers absorbed (IAM.ListAccessKeys 4)" in table
    assert data["runs"][1]["violations"][0] == "app-0: broken"
    assert per_rotation({"IAM.A": 2, "IAM.B": 6}, 2) == {"IAM.B": 3.0, "IAM.A": 1.0}


def test_each_thread_is_its_own_execution_environment(iam: IAMClient) -> None:  # noqa: ARG001 - moto
    # GIVEN the function's module state split per thread
    seen: list[Any] = []
    results: dict[str, tuple[Any, Any, list[Any]]] = {}
    shared = versions._VALUES
    stores = metrics.provider.metric_set

    both_added, both_read = threading.Barrier(2), threading.Barrier(2)

    def invoke(name: str) -> None:
        first, again = app.runtime(), app.runtime()
        versions._VALUES[name, "v"] = name
        metrics.add_dimension(name="Step", value=name)
        metrics.add_metric(name=f"Metric-{name}", unit=MetricUnit.Count, value=1)
        both_added.wait(timeout=10)  # the two invocations overlap, as concurrent ones do
        mine = (list(metrics.provider.metric_set), dict(metrics.provider.dimension_set))
        results[name] = (first, again, [*versions._VALUES, *mine])
        both_read.wait(timeout=10)
        metrics.provider.clear_metrics()

    with execution_environments(on_runtime=seen.append) as built:
        threads = [threading.Thread(target=invoke, args=(n,)) for n in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    # THEN each thread built its own runtime once and kept it, and saw only its own cached values
    (a_first, a_again, a_keys), (b_first, b_again, b_keys) = results["a"], results["b"]
    assert a_first is a_again
    assert b_first is b_again
    assert a_first is not b_first
    assert a_first.iam is not b_first.iam
    assert a_keys == [("a", "v"), ["Metric-a"], {"Step": "a"}]
    assert b_keys == [("b", "v"), ["Metric-b"], {"Step": "b"}]
    assert built == seen
    assert len(built) == 2
    # AND the function's own state is back afterwards
    assert versions._VALUES is shared
    assert app.runtime.__module__ == "rotation_handler.app"
    assert ("a", "v") not in shared
    assert metrics.provider.metric_set is stores
    assert "Metric-a" not in metrics.provider.metric_set
