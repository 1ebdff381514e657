"""``status`` without AWS: rotation windows, masking, the problems of a hand-made report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ses_smtp_rotator import _status_problems, _status_render
from ses_smtp_rotator._status import Report, Version

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:smtp-AbCdEf"
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def make_report(versions: list[Version], rules: dict[str, object] | None = None) -> Report:
    return Report(
        arn=ARN,
        name="smtp",
        enabled=True,
        schedule=dict(rules or {}),
        last_rotated=None,
        next_rotation=None,
        versions=versions,
    )


@pytest.mark.parametrize(
    ("rules", "window"),
    [
        pytest.param({"AutomaticallyAfterDays": 30}, timedelta(hours=24), id="days"),
        pytest.param({"ScheduleExpression": "rate(4 hours)"}, timedelta(hours=1), id="hours"),
        pytest.param(
            {"ScheduleExpression": "cron(0 8 ? * MON *)", "Duration": "3h"},
            timedelta(hours=3),
            id="duration",
        ),
    ],
)
def test_a_rotation_is_stuck_past_its_window(rules: dict[str, object], window: timedelta) -> None:
    # GIVEN a rotation whose pending version holds its key, just inside then just past the window
    for age, stuck in (
        (window - timedelta(minutes=1), False),
        (window + timedelta(minutes=1), True),
    ):
        pending = Version("pending-id", ["AWSPENDING"], NOW - age, holds="credentials")
        report = make_report([pending], rules)
        # WHEN judged / THEN it is stuck only past the window
        _status_problems.judge_rotation(report, now=NOW)
        assert (report.state == "stuck") is stuck, age


@pytest.mark.parametrize(
    ("holds", "code", "has_fix"),
    [
        pytest.param("unreadable", "current-unreadable", False, id="unreadable"),
        pytest.param("invalid", "current-unusable", False, id="invalid"),
        pytest.param("no-value", "current-unusable", False, id="no-value"),
        pytest.param("bootstrap", "never-rotated", True, id="bootstrap"),
    ],
)
def test_an_unusable_current_version_is_a_problem(*, holds: str, code: str, has_fix: bool) -> None:
    current = Version("current-id", ["AWSCURRENT"], NOW, holds=holds, note="cannot be read (X)")
    report = make_report([current])
    _status_problems.judge_current(report)
    (problem,) = report.problems
    assert problem.code == code
    assert bool(problem.fix) is has_fix


def test_no_current_version_is_a_problem() -> None:
    report = make_report([])
    _status_problems.judge_current(report)
    assert [p.code for p in report.problems] == ["no-current"]


def test_key_ids_are_masked_and_times_are_utc() -> None:
    assert _status_render.mask("AKIAIOSFODNN7EXAMPLE") == "AKIA…MPLE"
    assert _status_render.mask("short") == "…"
    assert _status_render.when(None) is None
    assert _status_render.ago(None, NOW) == "never"
    assert _status_render.ago(NOW - timedelta(days=2, hours=3), NOW).endswith("(2d 3h ago)")
    assert _status_render.ago(NOW - timedelta(hours=1, minutes=5), NOW).endswith("(1h 5m ago)")
