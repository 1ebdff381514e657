"""``status --fleet``'s parts without AWS: its progress line and how it shows apps."""

from __future__ import annotations

from datetime import UTC, datetime

from ses_smtp_rotator._status_fleet import Clients, Progress, check, fleet_name
from ses_smtp_rotator._status_fleet_model import App, Checked
from ses_smtp_rotator._status_fleet_render import Fleet
from ses_smtp_rotator._status_model import Problem, Report

ARN = "arn:aws:secretsmanager:us-east-1:111122223333:secret:billing-smtp-AbCdEf"
KEY = "AKIAIOSFODNN7EXAMPLE"


def test_progress_shows_a_count_at_most_every_interval_and_the_end() -> None:
    # GIVEN a clock that moves one second per app, and a line every 2 s
    now = [0.0]
    lines: list[str] = []

    def clock() -> float:
        return now[0]

    progress = Progress(5, every=2.0, clock=clock, write=lines.append)
    # WHEN five apps are checked
    for _ in range(5):
        now[0] += 1.0
        progress.tick()
    # THEN a line came every two seconds, and the last one says all were checked
    assert lines == [
        "status --fleet: checked 2/5 apps",
        "status --fleet: checked 4/5 apps",
        "status --fleet: checked 5/5 apps",
    ]


def test_a_short_run_shows_no_progress() -> None:
    lines: list[str] = []
    progress = Progress(3, every=60.0, write=lines.append)
    for _ in range(3):
        progress.tick()
    assert lines == []


def _report(*problems: Problem) -> Report:
    return Report(
        ARN,
        "billing-smtp",
        enabled=True,
        schedule={},
        last_rotated=None,
        next_rotation=None,
        versions=[],
        problems=list(problems),
    )


def test_one_line_per_app_names_the_first_problem_and_points_at_the_rest() -> None:
    # GIVEN an app with two problems, the first about a key
    unheld = Problem(
        "unheld-key",
        "key {key} is held by no version",
        ("aws iam delete-access-key --user-name u --access-key-id {key}",),
        KEY,
    )
    off = Problem("rotation-off", "rotation is turned off", ("aws rotate",))
    checked = Checked(App("billing", "us-east-1", ARN, "billing-smtp"), _report(unheld, off))
    checked.problems = list(checked.report.problems)  # type: ignore[union-attr]
    fleet = Fleet(name="f", tag_key="t", regions=["us-east-1"], checked=[checked])
    # WHEN it is shown / THEN one line: the key masked, its command, and the rest pointed at
    header, line, note = fleet.as_text().splitlines()
    assert header == "fleet f (t=f) in us-east-1: 1 apps, 1 unhealthy"
    assert KEY not in line
    assert "unheld-key: key AKIA…MPLE is held by no version" in line
    assert "--access-key-id <AKIA…MPLE>" in line
    assert f"(+1 more problem: ses-smtp-rotator status --secret-id {ARN})" in line
    assert note.startswith("key ids are masked")
    # AND with --show-key-ids the command is whole
    shown = Fleet(
        name="f", tag_key="t", regions=["us-east-1"], checked=[checked], show_key_ids=True
    )
    assert f"--access-key-id {KEY}" in shown.as_text()
    assert shown.as_json()["apps"][0]["problems"][0]["access_key_id"] == KEY


def test_fleet_names_are_tag_values() -> None:
    assert fleet_name(" billing ") == "billing"


class _Odd:
    """A Secrets Manager client whose answer breaks the reader in an unexpected way."""

    def describe_secret(self, **_: object) -> dict[str, object]:
        raise KeyError("ARN")  # noqa: EM101 - what an odd answer would raise


def test_an_unexpected_error_is_that_apps_problem_not_the_end_of_the_run() -> None:
    # GIVEN two apps, the first of which the reader cannot make sense of
    odd = App("odd", "us-east-1", ARN, "odd-smtp")
    clients = Clients(secrets_manager={"us-east-1": _Odd()}, iam=object())  # type: ignore[dict-item, arg-type]
    # WHEN the fleet is checked
    (checked,) = check([odd], clients=clients, now=datetime.now(UTC), workers=1)
    # THEN the app is unreadable, named by the error's class only (its text may hold values)
    assert [(p.code, p.message) for p in checked.problems] == [
        ("unreadable", "cannot be read (KeyError): see status --secret-id")
    ]
