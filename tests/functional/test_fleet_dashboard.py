"""The fleet's dashboard and overdue view read what the function really emits and logs.

Each metric a dashboard widget or alarm names must be one the function emits (its name is a
literal of ``src/rotation_handler``); each field a Logs Insights query (the saved queries, the
log widgets, the command in ``docs/fleet.md``) reads must be a key of the JSON lines the function
printed in the local world.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest

from rotation_handler import notices, sweep
from rotation_handler.observability import THROTTLED_METRIC
from sandbox.faults import Fault, FaultKind, inject
from tests.unit.test_template_notices import stack_sub
from tests.unit.test_template_policy import TEMPLATE, Template, load_template

if TYPE_CHECKING:
    from collections.abc import Callable

    from sandbox.world import World

ROOT: Final = Path(__file__).resolve().parents[2]
FLEET: Final = ROOT / "fleet" / "template.yaml"
FLEET_DOC: Final = ROOT / "docs" / "fleet.md"
SOURCES: Final = "\n".join(
    path.read_text(encoding="utf-8") for path in (ROOT / "src" / "rotation_handler").glob("*.py")
)
# Logs Insights' own words (commands, functions, operators), never a field of the logs.
_WORDS: Final = frozenset(
    {
        *("fields", "filter", "stats", "sort", "limit", "display", "by", "as", "desc", "asc"),
        *("and", "or", "not", "like", "in"),
        *("latest", "count", "ispresent", "max", "min", "sum", "avg", "bin"),
    }
)


@pytest.fixture(scope="module")
def fleet() -> Template:
    return load_template(FLEET.read_text(encoding="utf-8"))


def dashboard(template: Template, name: str) -> dict[str, Any]:
    """The dashboard's body with every ``${...}`` filled in (the stack named ``stack``)."""
    text, names = template["Resources"][name]["Properties"]["DashboardBody"]["Fn::Sub"]
    values = {"AWS::Region": "eu-west-1", "RotationOverdueHours": "768", "RotationFunction": "fn"}
    values |= {key: stack_sub(value) for key, value in names.items() if key != "LogGroup"}
    values["LogGroup"] = "/aws/lambda/stack-ses-smtp-fleet"
    body: dict[str, Any] = json.loads(
        re.sub(r"\$\{([\w:]+)\}", lambda m: str(values[m.group(1)]), text)
    )
    return body


def metric_names(body: dict[str, Any]) -> set[str]:
    """The metric names of every metric widget (rows starting with a namespace)."""
    rows = [
        row
        for widget in body["widgets"]
        if widget["type"] == "metric"
        for row in widget["properties"]["metrics"]
    ]
    return {row[1] for row in rows if isinstance(row[0], str) and row[0] != "..."}


def queries(template: Template) -> dict[str, str]:
    """Every Logs Insights query of the fleet template: saved ones and log widgets."""
    found = {
        name: str(resource["Properties"]["QueryString"])
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Logs::QueryDefinition"
    }
    for number, widget in enumerate(dashboard(template, "FleetDashboard")["widgets"]):
        if widget["type"] == "log":
            found[f"widget {number}"] = widget["properties"]["query"].split("|", 1)[1]
    return found


def query_fields(query: str) -> set[str]:
    """The log fields a query reads: its words minus Logs Insights' own, aliases and literals."""
    text = re.sub(r'"[^"]*"|/[^/]*/|\b\d+(\.\d+)?\b', " ", query)
    aliases = set(re.findall(r"\bas\s+(\w+)", text))
    words = set(re.findall(r"@?[A-Za-z_]\w*", text))
    return {w for w in words if not w.startswith("@")} - _WORDS - aliases


def log_lines(out: str) -> list[dict[str, Any]]:
    """The function's JSON log lines in captured stdout (EMF documents excluded)."""
    lines = []
    for line in out.splitlines():
        if line.startswith("{"):
            document = json.loads(line)
            if "_aws" not in document and "message" in document:
                lines.append(document)
    return lines


def test_every_metric_the_dashboards_and_alarms_use_is_emitted(fleet: Template) -> None:
    # GIVEN the metric names of the fleet's and the single stack's dashboards and alarms
    single = load_template(TEMPLATE.read_text(encoding="utf-8"))
    names = metric_names(dashboard(fleet, "FleetDashboard"))
    names |= metric_names(dashboard(single, "RotationDashboard")) - {"Errors", "Invocations"}
    names |= {
        stat["MetricStat"]["Metric"]["MetricName"]
        for template, alarm in (
            (fleet, "FleetRotationOverdueAlarm"),
            (single, "RotationOverdueAlarm"),
        )
        for stat in template["Resources"][alarm]["Properties"]["Metrics"]
        if "MetricStat" in stat
    }
    # THEN the function's source names each one
    assert {"FailedRotations", "OldKeyUsedAfterPromotion", THROTTLED_METRIC} <= names
    assert not {name for name in names if f'"{name}"' not in SOURCES}


def test_the_fleet_dashboard_reads_this_stacks_namespace(fleet: Template) -> None:
    body = dashboard(fleet, "FleetDashboard")
    namespaces = {
        row[0]
        for widget in body["widgets"]
        if widget["type"] == "metric"
        for row in widget["properties"]["metrics"]
        if isinstance(row[0], str) and row[0] != "..."
    }
    variables = fleet["Globals"]["Function"]["Environment"]["Variables"]
    assert namespaces == {stack_sub(variables["POWERTOOLS_METRICS_NAMESPACE"])}
    alarm = fleet["Resources"]["FleetRotationOverdueAlarm"]["Properties"]
    (stat,) = [m for m in alarm["Metrics"] if "MetricStat" in m]
    assert stat["MetricStat"]["Metric"]["Namespace"] == variables["POWERTOOLS_METRICS_NAMESPACE"]
    # AND every log widget reads the fleet function's log group
    sources = {
        w["properties"]["query"].split("|", 1)[0].strip()
        for w in body["widgets"]
        if w["type"] == "log"
    }
    assert sources == {"SOURCE '/aws/lambda/stack-ses-smtp-fleet'"}


def test_the_documented_command_runs_the_saved_query(fleet: Template) -> None:
    # GIVEN the saved query of the most overdue apps / THEN docs/fleet.md's command runs it
    saved = " ".join(fleet["Resources"]["OverdueAppsQuery"]["Properties"]["QueryString"].split())
    assert f"--query-string '{saved}'" in " ".join(FLEET_DOC.read_text(encoding="utf-8").split())


def test_the_queries_read_fields_the_function_logs(
    fleet: Template, make_world: Callable[..., World], capfd: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a rotated secret, its sweep, and a step that failed, with their log lines captured
    world = make_world()
    assert world.rotate().ok
    capfd.readouterr()
    world.sweep()
    with inject(world.ses, Fault("AUTH", FaultKind.SMTP_421, times=9)):
        assert not world.rotate(max_attempts=1).ok
    lines = log_lines(capfd.readouterr().out)
    sweep_lines = [line for line in lines if "hours_since_rotation" in line]
    failed = [line for line in lines if line["message"] == "step failed"]
    assert sweep_lines
    assert failed
    logged = set().union(*(set(line) for line in lines))
    # THEN each query's fields are keys of those lines
    for name, query in queries(fleet).items():
        missing = query_fields(query) - logged - {"last_used"}
        assert not missing, (name, missing)
    # AND the sweep's line names the app and its age; the failed step's names the cause
    (sweep_line,) = [line for line in sweep_lines if line["message"] == "sweep done"]
    assert set(sweep.LOGGED_AGE_KEYS) <= set(sweep_line)
    assert sweep_line["app"] == world.secret_arn.split(":")[-1].rsplit("-", 1)[0]
    assert 0 <= sweep_line["hours_since_rotation"] < 1
    assert {"secret_id", "step", "error"} <= set(failed[0])
    assert "421" in failed[0]["error"]
    assert failed[0]["service"] == notices.SOURCE


def test_the_late_use_warning_carries_the_fields_of_its_query() -> None:
    # The old key's late use needs a grace period to pass; its line's keys are in the source.
    assert '"last_used": used.isoformat()' in SOURCES
    assert "the old key was used after the new one was promoted" in SOURCES
    assert "logger.append_keys(app=state.app" in SOURCES


def test_the_query_field_reader_sees_fields_and_skips_words() -> None:
    query = 'filter message = "x" | stats latest(hours) as h by app | filter h > 5 | sort h desc'
    assert query_fields(query) == {"message", "hours", "app"}


def test_a_throttled_answer_the_sdk_absorbed_is_counted(
    make_world: Callable[..., World], capfd: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a steady state, then IAM throttling one CreateAccessKey (botocore retries it)
    from rotation_handler import app  # noqa: PLC0415 - the world's runtime, built at its first step
    from tests.functional.test_overdue_metric import metric_values  # noqa: PLC0415

    world = make_world()
    assert world.rotate().ok
    capfd.readouterr()
    with inject(app.runtime().iam, Fault("CreateAccessKey", FaultKind.THROTTLE)) as fault:
        # WHEN the next rotation runs
        assert world.rotate(max_attempts=1).ok
    # THEN the rotation succeeded at once, and createSecret counted one throttled answer
    assert fault.fired == 1
    found = metric_values(capfd.readouterr().out, THROTTLED_METRIC)
    assert [(value, dims["Step"]) for value, dims in found] == [(1.0, "createSecret")]
