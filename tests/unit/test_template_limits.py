"""What real AWS refuses or needs that the templates must say up front (issue 24).

Secrets Manager's shortest schedule, the name lengths a stack name must leave room for, the
dead-letter queue of asynchronous invocations, the custom resource's timeout, the Scheduler
role's trust and a required sweep role: each read from the templates as written.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tools import cfn_resolve

ROOT = Path(__file__).resolve().parents[2]
SCHEDULED = ("template.yaml", "fleet/app.yaml")
# The longest name each named resource type allows, and where the name is.
NAME_LIMITS = {
    "AWS::Serverless::Function": ("FunctionName", 64),
    "AWS::IAM::User": ("UserName", 64),
    "AWS::IAM::Role": ("RoleName", 64),
}
STACK_NAME = "${AWS::StackName}"


def _template(name: str) -> dict[str, Any]:
    return cfn_resolve.load(ROOT / name)


def _resources(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


@pytest.mark.parametrize("name", SCHEDULED)
@pytest.mark.parametrize(
    ("expression", "accepted"),
    [
        pytest.param("rate(30 days)", True, id="30-days"),
        pytest.param("rate(1 day)", True, id="1-day"),
        pytest.param("rate(999 days)", True, id="999-days"),
        pytest.param("rate(4 hours)", True, id="4-hours"),
        pytest.param("rate(12 hours)", True, id="12-hours"),
        pytest.param("cron(0 4 ? * MON *)", True, id="cron"),
        pytest.param("rate(1 hour)", False, id="1-hour"),
        pytest.param("rate(3 hours)", False, id="3-hours"),
        pytest.param("rate(0 days)", False, id="0-days"),
        pytest.param("rate(1000 days)", False, id="1000-days"),
        pytest.param("rate(04 hours)", False, id="leading-zero"),
    ],
)
def test_the_schedule_parameter_takes_only_what_secrets_manager_takes(
    name: str, expression: str, *, accepted: bool
) -> None:
    # GIVEN the template's RotationSchedule / WHEN CloudFormation matches a value against it
    pattern = _template(name)["Parameters"]["RotationSchedule"]["AllowedPattern"]
    # THEN below 4 hours or beyond 999 days is refused before the stack starts
    assert bool(re.fullmatch(pattern, expression)) is accepted


def _longest_stack_name(template: dict[str, Any]) -> int:
    """The longest stack name every name built from it still fits."""
    limits = []
    for kind, (key, limit) in NAME_LIMITS.items():
        for resource in _resources(template, kind).values():
            value = resource.get("Properties", {}).get(key, {})
            sub = value.get("Fn::Sub") if isinstance(value, dict) else None
            if isinstance(sub, str) and sub.startswith(STACK_NAME) and sub.count("${") == 1:
                limits.append(limit - len(sub) + len(STACK_NAME))
    assert limits, "no name is built from the stack name"
    return min(limits)


@pytest.mark.parametrize(
    ("name", "longest"),
    [
        pytest.param("template.yaml", 46, id="single"),
        pytest.param("fleet/template.yaml", 49, id="fleet"),
        pytest.param("fleet/app.yaml", 55, id="app"),
    ],
)
def test_each_template_states_the_longest_stack_name_it_takes(name: str, longest: int) -> None:
    # GIVEN the names built from the stack name and the limits of their services
    template = _template(name)
    # THEN the figure is what they leave, and the template's Description says it
    assert _longest_stack_name(template) == longest
    assert f"at most {longest} characters" in " ".join(template["Description"].split())


@pytest.mark.parametrize(
    ("name", "queue", "role"),
    [
        pytest.param(
            "template.yaml", "RotationDeadLetterQueue", "RotationFunctionRole", id="single"
        ),
        pytest.param(
            "fleet/template.yaml", "FleetDeadLetterQueue", "FleetFunctionRole", id="fleet"
        ),
    ],
)
def test_failed_asynchronous_invocations_are_kept_and_announced(
    name: str, queue: str, role: str
) -> None:
    template = _template(name)
    (function,) = _resources(template, "AWS::Serverless::Function").values()
    queue_arn = {"Fn::GetAtt": [queue, "Arn"]}
    # THEN the function hands a failed asynchronous invocation's event to the stack's queue
    assert function["Properties"]["DeadLetterQueue"] == {"Type": "SQS", "TargetArn": queue_arn}
    assert template["Resources"][queue]["Type"] == "AWS::SQS::Queue"
    # AND its role may send there, and nowhere else
    statements = template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]
    sends = [s for s in statements["Statement"] if "sqs:SendMessage" in str(s.get("Action"))]
    assert [s["Resource"] for s in sends] == [queue_arn]
    # AND an alarm watches the queue's visible messages
    watching = [
        alarm["Properties"]
        for alarm in _resources(template, "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("Namespace") == "AWS/SQS"
    ]
    assert [a["Dimensions"][0]["Value"] for a in watching] == [{"Fn::GetAtt": [queue, "QueueName"]}]
    assert all("AlarmActions" in a for a in watching)


def test_the_custom_resource_times_out_after_lambdas_retries_not_after_an_hour() -> None:
    app = _template("fleet/app.yaml")
    fleet = _template("fleet/template.yaml")
    timeout = int(fleet["Globals"]["Function"]["Timeout"])
    customs = [r for r in app["Resources"].values() if r["Type"].startswith("Custom::")]
    assert customs
    for custom in customs:
        service_timeout = custom["Properties"].get("ServiceTimeout")
        # THEN it is set, below CloudFormation's default of 3600 s, and covers three attempts
        # (Lambda's two retries, about 1 and 2 minutes apart)
        assert isinstance(service_timeout, int), custom
        assert 3 * timeout + 180 <= service_timeout < 3600


def test_the_sweep_role_is_assumed_only_from_the_accounts_schedule_group() -> None:
    fleet = _template("fleet/template.yaml")
    trust = fleet["Resources"]["SweepSchedulerRole"]["Properties"]["AssumeRolePolicyDocument"]
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Service": "scheduler.amazonaws.com"}
    condition = statement["Condition"]
    assert condition["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    # THEN aws:SourceArn names a schedule group (EventBridge Scheduler's guidance), this one's
    source = condition["ArnEquals"]["aws:SourceArn"]["Fn::Sub"]
    assert source == (
        "arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:schedule-group/default"
    )
    (schedule,) = _resources(_template("fleet/app.yaml"), "AWS::Scheduler::Schedule").values()
    assert schedule["Properties"].get("GroupName", "default") == "default"


def test_an_app_stack_without_the_sweep_role_is_refused_at_the_parameter() -> None:
    parameter = _template("fleet/app.yaml")["Parameters"]["SweepRoleArn"]
    # THEN it has no default (CloudFormation refuses a stack without it) and "" does not match
    assert "Default" not in parameter
    assert re.fullmatch(parameter["AllowedPattern"], "") is None
    assert re.fullmatch(parameter["AllowedPattern"], "arn:aws:iam::111111111111:role/sweep")


CLOUDTRAIL_PAGE = (
    "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-cloudtrail.html"
)


@pytest.mark.parametrize("parameter", ["AlarmTopicArn", "NotificationEmail"])
def test_where_notices_are_configured_the_cloudtrail_trail_is_named(parameter: str) -> None:
    # GIVEN a parameter that turns the rotation notices on
    description = " ".join(
        _template("template.yaml")["Parameters"][parameter]["Description"].split()
    )
    # THEN it says the notices need a CloudTrail trail (EventBridge gets them only through one)
    assert re.search(r"CloudTrail.{0,40}\btrail\b", description), description


def test_the_docs_say_why_notices_need_a_trail_citing_aws() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    section = text.split("### Rotation events need a CloudTrail trail", 1)[1].split("\n**", 1)[0]
    assert CLOUDTRAIL_PAGE in section
    assert "no rotation notice arrives" in section


def test_changing_the_user_starts_a_rotation_after_everything_names_the_new_user() -> None:
    # GIVEN the single template
    template = _template("template.yaml")
    resources = template["Resources"]
    change = resources["RotateOnUserChange"]
    # THEN a resource served by the function carries the user the secret's value names
    assert change["Type"] == "Custom::SmtpUserChange"
    assert change["Properties"]["ServiceToken"] == {"Fn::GetAtt": ["RotationFunction", "Arn"]}
    user = resources["SmtpSecret"]["Properties"]["SecretString"]["Fn::Sub"][1]["UserName"]
    assert change["Properties"]["UserName"] == user
    assert (
        resources["RotationFunction"]["Properties"]["Environment"]["Variables"][
            "SMTP_IAM_USER_NAME"
        ]
        == user
    )
    # AND CloudFormation updates it only after the secret's value, the function (its
    # ServiceToken), its role and the schedule, so that the rotation sees the new user everywhere
    assert {"SmtpSecret", "RotationFunctionRole", "SmtpSecretRotationSchedule"} <= set(
        change["DependsOn"]
    )
    # AND it does not wait an hour for an answer that never comes
    assert 0 < change["Properties"]["ServiceTimeout"] <= 900
    # AND the parameter and the docs say what happens, citing the schedule's page
    description = " ".join(template["Parameters"]["IamUserName"]["Description"].split())
    assert "starts a rotation" in description
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert "the deploy's rotation gives it its first key" not in text
    assert "aws-resource-secretsmanager-rotationschedule.html" in text
    assert "Custom::SmtpUserChange" in text
