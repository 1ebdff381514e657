"""The failure notice's content, its rules in both templates, and its permissions, offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from rotation_handler import notices
from rotation_handler.events import StepEvent
from rotation_handler.exceptions import SmtpTestError
from rotation_handler.settings import Settings
from rotation_handler.state import SecretState
from tests.unit.test_template_notices import SECRET_ARN, _notice, _render, matches
from tests.unit.test_template_policy import TEMPLATE, Template, alternatives, load_template

ROOT = Path(__file__).resolve().parents[2]
FLEET = ROOT / "fleet" / "template.yaml"
MEMBER = ROOT / "fleet" / "member-role.yaml"
TOKEN = "a1b2c3d4-0000-4000-8000-000000000000"
STATE = SecretState(
    arn=SECRET_ARN,
    name="stack-SmtpSecret",
    rotation_enabled=True,
    versions={TOKEN: ("AWSPENDING",)},
)


class FakeSecretsManager:
    """Records tag writes; answers DescribeSecret with :data:`STATE`."""

    def __init__(self) -> None:
        self.tagged: list[list[dict[str, str]]] = []
        self.untagged: list[list[str]] = []

    def describe_secret(self, **_: str) -> dict[str, Any]:
        return {"ARN": SECRET_ARN, "Name": STATE.name, "RotationEnabled": True}

    def tag_resource(self, *, Tags: list[dict[str, str]], **_: str) -> None:  # noqa: N803
        self.tagged.append(Tags)

    def untag_resource(self, *, TagKeys: list[str], **_: str) -> None:  # noqa: N803
        self.untagged.append(TagKeys)


class FakeBus:
    """An EventBridge client that keeps the entries, or refuses them all."""

    def __init__(self, *, refuse: bool = False, drop: bool = False) -> None:
        self.entries: list[dict[str, Any]] = []
        self.refuse = refuse
        self.drop = drop  # answer 200 with the entry failed, as PutEvents does under load

    def put_events(self, *, Entries: list[Any]) -> dict[str, Any]:  # noqa: N803 - boto3's shape
        if self.refuse:
            raise ClientError({"Error": {"Code": "AccessDeniedException"}}, "PutEvents")
        if self.drop:
            failed = {"ErrorCode": "InternalFailure", "ErrorMessage": "Internal service error."}
            return {"FailedEntryCount": 1, "Entries": [failed]}
        self.entries += Entries
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]}


def streak(sm: FakeSecretsManager, bus: FakeBus, step: str = "testSecret") -> notices.Streak:
    return notices.Streak(
        sm=sm,  # type: ignore[arg-type]
        events=lambda: bus,
        settings=Settings.from_env({"AWS_REGION": "eu-west-1"}),
        event=StepEvent(step=step, secret_id=SECRET_ARN, token=TOKEN),
        function_name="stack-ses-smtp-fleet",
    )


def delivered(entry: dict[str, Any]) -> dict[str, Any]:
    """The event EventBridge makes of a PutEvents entry."""
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": "111122223333",
        "time": "2026-12-04T10:00:00Z",
        "region": "eu-west-1",
        "resources": entry["Resources"],
        "detail": json.loads(entry["Detail"]),
    }


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        pytest.param("no key\nsecond line", "no key", id="first-line"),
        pytest.param('a "quoted" \\ path', "a 'quoted' / path", id="json-safe"),
        pytest.param("nul\x00 and bell\x07", "nul? and bell?", id="printable"),
        pytest.param("", "SmtpTestError", id="empty"),
    ],
)
def test_the_cause_is_one_printable_json_safe_line(message: str, expected: str) -> None:
    assert notices.cause_of(SmtpTestError(message)) == expected


def test_the_cause_is_bounded() -> None:
    cause = notices.cause_of(SmtpTestError("x" * 100_000))
    assert len(cause) == notices.MAX_CAUSE
    assert cause.endswith("…")


def test_a_failure_notifies_once_and_marks_the_secret() -> None:
    # GIVEN a step that fails / WHEN the streak watches it
    sm, bus = FakeSecretsManager(), FakeBus()
    watch = streak(sm, bus)
    watch.state = STATE
    with pytest.raises(SmtpTestError, match="535"), watch:
        raise SmtpTestError("SES refused the login (535)\nmore")  # noqa: EM101, TRY003 - the step's error, as raised
    # THEN one bounded event names the step and the cause, and the secret is marked
    (entry,) = bus.entries
    assert len(entry["Detail"]) < 1024
    detail = json.loads(entry["Detail"])
    assert detail["step"] == "testSecret"
    assert detail["error"] == "SmtpTestError"
    assert detail["cause"] == "SES refused the login (535)"
    assert sm.tagged == [[{"Key": notices.FAILING_TAG, "Value": notices.digest(TOKEN)}]]

    # WHEN the same rotation fails again (the tag is now in DescribeSecret's answer)
    bus.entries.clear()
    again = streak(sm, bus)
    again.state = SecretState(
        **{**STATE.__dict__, "tags": {notices.FAILING_TAG: notices.digest(TOKEN)}}
    )
    with pytest.raises(SmtpTestError), again:
        raise SmtpTestError("SES refused the login (535)")  # noqa: EM101, TRY003 - the step's error, as raised
    # THEN nothing more is sent
    assert bus.entries == []


def test_a_notice_that_fails_never_replaces_the_steps_error() -> None:
    # GIVEN EventBridge refusing the event / WHEN the step fails
    sm, bus = FakeSecretsManager(), FakeBus(refuse=True)
    with pytest.raises(SmtpTestError, match="the step's own"), streak(sm, bus):
        raise SmtpTestError("the step's own error")  # noqa: EM101, TRY003 - the step's error, as raised
    # THEN the step's error propagated (above), and the secret was not marked (it would be notified
    # again at the next failure rather than never)
    assert sm.tagged == []


def test_an_event_answered_but_not_taken_leaves_the_streak_open() -> None:
    # GIVEN EventBridge answering 200 with the entry failed (FailedEntryCount 1)
    sm, bus = FakeSecretsManager(), FakeBus(drop=True)
    # WHEN the step fails
    with pytest.raises(SmtpTestError, match="the step's own"), streak(sm, bus):
        raise SmtpTestError("the step's own error")  # noqa: EM101, TRY003 - the step's error, as raised
    # THEN the secret is not marked: the next failure of this rotation tries to notify again
    assert sm.tagged == []
    # AND once EventBridge takes it, the notice goes out and the streak is marked
    bus.drop = False
    with pytest.raises(SmtpTestError), streak(sm, bus):
        raise SmtpTestError("the step's own error")  # noqa: EM101, TRY003 - the step's error, as raised
    assert len(bus.entries) == 1
    assert len(sm.tagged) == 1


def test_the_app_is_the_stack_that_made_the_secret() -> None:
    # GIVEN a secret made by the stack "billing" (CloudFormation's own tag), another by hand
    made = SecretState(**{**STATE.__dict__, "tags": {"aws:cloudformation:stack-name": "billing"}})
    # THEN the notice names the stack, or the secret's name when no stack made it
    assert made.app == "billing"
    assert STATE.app == STATE.name


def test_a_failure_before_the_guard_asks_the_gate_for_the_secret() -> None:
    sm, bus = FakeSecretsManager(), FakeBus()
    with pytest.raises(SmtpTestError), streak(sm, bus, step="createSecret"):
        raise SmtpTestError("early")  # noqa: EM101 - the step's error, as raised
    assert json.loads(bus.entries[0]["Detail"])["app"] == STATE.name


def test_finish_secret_ends_the_streak_only_when_marked() -> None:
    sm, bus = FakeSecretsManager(), FakeBus()
    for tags in ({}, {notices.FAILING_TAG: "x"}):
        with streak(sm, bus, step="finishSecret") as watch:
            watch.state = SecretState(**{**STATE.__dict__, "tags": tags})
    assert sm.untagged == [[notices.FAILING_TAG]]


# --- the rules that route it ---------------------------------------------------------------------


def _entry(function_name: str = "stack-ses-smtp-fleet") -> dict[str, Any]:
    watch = streak(FakeSecretsManager(), FakeBus())
    watch.function_name = function_name
    return watch.entry(STATE, SmtpTestError('SES refused "AKIA" (535)'))


def _fleet_pattern(template: Template) -> dict[str, Any]:
    pattern = template["Resources"]["StepFailedRule"]["Properties"]["EventPattern"]
    text = json.dumps(pattern).replace('{"Fn::Sub": "${AWS::StackName}-ses-smtp-fleet"}', '"x"')
    rendered: dict[str, Any] = _render(json.loads(text.replace('"x"', '"stack-ses-smtp-fleet"')))
    return rendered


def test_the_single_templates_rule_matches_the_notice_of_its_secret_only() -> None:
    template = load_template(TEMPLATE.read_text(encoding="utf-8"))
    rule = template["Resources"]["RotationStepFailedRule"]["Properties"]
    pattern = _render(rule["EventPattern"])
    event = delivered(_entry())
    assert matches(pattern, event)
    other = json.loads(json.dumps(event).replace(SECRET_ARN, SECRET_ARN + "x"))
    assert not matches(pattern, other)
    # AND the text names the step, the cause and the command to run, as one JSON string
    text = _notice(template, "RotationStepFailedRule", event)
    assert text.startswith(f"The testSecret step of the SES SMTP rotation of {SECRET_ARN} failed")
    assert "SmtpTestError: SES refused 'AKIA' (535)" in text
    assert f"ses-smtp-rotator status --secret-id {SECRET_ARN}" in text


def test_the_fleet_rule_matches_its_own_functions_notices_only() -> None:
    template = load_template(FLEET.read_text(encoding="utf-8"))
    pattern = _fleet_pattern(template)
    assert matches(pattern, delivered(_entry()))
    assert not matches(pattern, delivered(_entry("other-ses-smtp-fleet")))
    (target,) = template["Resources"]["StepFailedRule"]["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": "AlarmTopicArn"}
    assert template["Resources"]["StepFailedRule"]["Condition"] == "HasAlarmTopic"
    text = _notice(template, "StepFailedRule", delivered(_entry()))
    assert text.startswith(f"App {STATE.name} of the SES SMTP fleet: its testSecret step failed")


# --- the permissions: only the one tag key, the default bus ------------------------------------


def _statements(path: Path) -> list[dict[str, Any]]:
    template = load_template(path.read_text(encoding="utf-8"))
    found = []
    for resource in template["Resources"].values():
        for policy in alternatives(resource.get("Properties", {}).get("Policies", [])):
            found += alternatives(policy["PolicyDocument"]["Statement"])
    return found


@pytest.mark.parametrize("path", [TEMPLATE, FLEET, MEMBER], ids=lambda p: p.name)
def test_the_secret_may_carry_only_the_failing_mark(path: Path) -> None:
    tagging = [
        s
        for s in _statements(path)
        if {"secretsmanager:TagResource", "secretsmanager:UntagResource"}
        & {str(a) for a in alternatives(s.get("Action", []))}
    ]
    (statement,) = tagging
    condition = statement["Condition"]
    assert condition["ForAllValues:StringEquals"]["aws:TagKeys"] == [notices.FAILING_TAG]
    assert condition["Null"] == {"aws:TagKeys": "false"}
    if path != TEMPLATE:  # fleet secrets: only those carrying the fleet's tag
        fleet = condition["StringEquals"]["secretsmanager:ResourceTag/ses-smtp-rotation:fleet"]
        assert fleet == {"Ref": "FleetName"}


@pytest.mark.parametrize("path", [TEMPLATE, FLEET], ids=lambda p: p.name)
def test_the_function_puts_events_on_the_default_bus_only(path: Path) -> None:
    (statement,) = [s for s in _statements(path) if "events:PutEvents" in str(s.get("Action"))]
    assert statement["Action"] == "events:PutEvents"
    assert statement["Resource"]["Fn::Sub"].endswith(":event-bus/default")


class RefusingSecretsManager(FakeSecretsManager):
    """Secrets Manager refusing to take the mark off."""

    def untag_resource(self, **_: object) -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException"}}, "UntagResource")


def test_a_refused_secret_is_neither_announced_nor_tagged() -> None:
    # GIVEN a fleet function and a secret without the fleet's tag, failing before the guard
    sm, bus = FakeSecretsManager(), FakeBus()
    watch = streak(sm, bus, step="createSecret")
    watch.settings = Settings.from_env(
        {"AWS_REGION": "eu-west-1", "FLEET_USER_PATH": "/ses-smtp/", "FLEET_TAG_VALUE": "default"}
    )
    with pytest.raises(SmtpTestError), watch:
        raise SmtpTestError("refused")  # noqa: EM101 - the step's error, as raised
    # THEN nothing is sent and nothing is written
    assert bus.entries == []
    assert sm.tagged == []


def test_a_mark_that_cannot_be_removed_leaves_the_success_alone() -> None:
    sm, bus = RefusingSecretsManager(), FakeBus()
    with streak(sm, bus, step="finishSecret") as watch:
        watch.state = SecretState(**{**STATE.__dict__, "tags": {notices.FAILING_TAG: "x"}})
    assert bus.entries == []
