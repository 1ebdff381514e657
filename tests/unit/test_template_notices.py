"""The template's notices, overdue alarm and dashboard, checked offline.

The EventBridge rules are checked against the rotation events Secrets Manager documents (delivered
through CloudTrail as "AWS Service Event via CloudTrail", the secret's ARN in
``detail.additionalEventData.SecretId``, the step in ``detail.errorMessage``) with a small matcher
for the exact-match and list semantics of EventBridge patterns; it refuses any other pattern syntax
rather than guess.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from rotation_handler import sweep
from tests.unit.test_template_policy import TEMPLATE, Template, load_template

if TYPE_CHECKING:
    from collections.abc import Callable

SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:stack-SmtpSecret-a1B2c3"
OTHER_ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:other-SmtpSecret-z9Y8x7"
SWEEP_SOURCE = Path(sweep.__file__).read_text(encoding="utf-8")
RATE = re.compile(r"rate\((\d+) (hours?|days?)\)")


def rotation_event(name: str, secret_arn: str = SECRET_ARN) -> dict[str, Any]:
    """A Secrets Manager rotation event as EventBridge delivers it (CloudTrail service event)."""
    detail: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": {"accountId": "111122223333", "invokedBy": "secretsmanager.amazonaws.com"},
        "eventTime": "2026-12-04T10:00:00Z",
        "eventSource": "secretsmanager.amazonaws.com",
        "eventName": name,
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "secretsmanager.amazonaws.com",
        "userAgent": "secretsmanager.amazonaws.com",
        "requestParameters": None,
        "responseElements": None,
        "additionalEventData": {"SecretId": secret_arn},
        "readOnly": False,
        "eventType": "AwsServiceEvent",
        "managementEvent": True,
    }
    if name == "RotationFailed":
        detail["errorMessage"] = (
            "Error when executing lambda arn:aws:lambda:eu-west-1:111122223333:function:"
            "stack-ses-smtp-rotation during testSecret step"
        )
    return {
        "version": "0",
        "id": "d82e0a2d-f36e-11fd-37cb-cba423a71196",
        "detail-type": "AWS Service Event via CloudTrail",
        "source": "aws.secretsmanager",
        "account": "111122223333",
        "time": "2026-12-04T10:00:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": detail,
    }


def api_call_event() -> dict[str, Any]:
    """A RotateSecret API call on the same secret: not a rotation outcome."""
    event = rotation_event("RotateSecret")
    event["detail-type"] = "AWS API Call via CloudTrail"
    event["detail"]["eventType"] = "AwsApiCall"
    event["detail"]["requestParameters"] = {"secretId": SECRET_ARN}
    return event


# --- an EventBridge pattern matcher (exact values and lists only) ------------------------------


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """Whether ``event`` matches ``pattern``: every key present, each value one of the listed ones.

    Raises
    ------
    ValueError
        The pattern uses syntax this matcher does not implement (content filters).
    TypeError
        A pattern value is a scalar instead of a list or an object.
    """
    for key, wanted in pattern.items():
        if key not in event:
            return False
        value = event[key]
        if isinstance(wanted, dict):
            if not isinstance(value, dict) or not matches(wanted, value):
                return False
        elif isinstance(wanted, list):
            if any(not isinstance(item, (str, int, float, bool)) for item in wanted):
                msg = f"unsupported pattern syntax under {key!r}: {wanted!r}"
                raise ValueError(msg)
            values = value if isinstance(value, list) else [value]
            if not any(item in wanted for item in values):
                return False
        else:
            msg = f"pattern values must be lists or objects, {key!r} is {wanted!r}"
            raise TypeError(msg)
    return True


def _render(node: object) -> Any:  # noqa: ANN401 - a rendered template fragment
    """Resolve ``Ref SmtpSecret`` to :data:`SECRET_ARN`; refuse any other intrinsic."""
    if isinstance(node, dict):
        if node == {"Ref": "SmtpSecret"}:
            return SECRET_ARN
        if any(key.startswith(("Fn::", "Ref")) for key in node):
            msg = f"cannot render {node!r} offline"
            raise ValueError(msg)
        return {key: _render(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_render(item) for item in node]
    return node


@pytest.fixture
def template() -> Template:
    return load_template(TEMPLATE.read_text(encoding="utf-8"))


def _rule(template: Template, name: str) -> dict[str, Any]:
    resource: dict[str, Any] = template["Resources"][name]
    assert resource["Type"] == "AWS::Events::Rule"
    return resource


def _pattern(template: Template, name: str) -> dict[str, Any]:
    rendered: dict[str, Any] = _render(_rule(template, name)["Properties"]["EventPattern"])
    return rendered


def test_matcher_semantics() -> None:
    # GIVEN a pattern with a list at the top and a nested object
    pattern = {"a": ["x", "y"], "b": {"c": ["z"]}}
    # THEN any listed value matches, a list in the event matches on any element, and a missing
    # key, another value or a scalar where an object is expected does not
    assert matches(pattern, {"a": "y", "b": {"c": "z"}, "extra": 1})
    assert matches(pattern, {"a": ["q", "x"], "b": {"c": "z"}})
    assert not matches(pattern, {"a": "x"})
    assert not matches(pattern, {"a": "w", "b": {"c": "z"}})
    assert not matches(pattern, {"a": "x", "b": "z"})
    with pytest.raises(ValueError, match="unsupported"):
        matches({"a": [{"prefix": "x"}]}, {"a": "x"})
    with pytest.raises(TypeError, match="lists or objects"):
        matches({"a": "x"}, {"a": "x"})


@pytest.mark.parametrize("name", ["RotationFailed", "RotationAbandoned"])
def test_the_failure_rule_matches_this_secrets_failures(template: Template, name: str) -> None:
    # GIVEN the failure rule's pattern for this stack's secret
    pattern = _pattern(template, "RotationFailedRule")
    # THEN the documented event for this secret matches, and the same event for another does not
    assert matches(pattern, rotation_event(name))
    assert not matches(pattern, rotation_event(name, OTHER_ARN))


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(rotation_event("RotationSucceeded"), id="success"),
        pytest.param(api_call_event(), id="api-call"),
    ],
)
def test_the_failure_rule_ignores_other_events(template: Template, event: dict[str, Any]) -> None:
    assert not matches(_pattern(template, "RotationFailedRule"), event)


def test_the_success_rule_matches_only_this_secrets_successes(template: Template) -> None:
    pattern = _pattern(template, "RotationSucceededRule")
    assert matches(pattern, rotation_event("RotationSucceeded"))
    assert not matches(pattern, rotation_event("RotationSucceeded", OTHER_ARN))
    assert not matches(pattern, rotation_event("RotationFailed"))


def _json_path(event: dict[str, Any], path: str) -> object:
    """Resolve a ``$.a.b`` path as EventBridge's InputPathsMap does (None when absent)."""
    node: object = event
    for part in path.removeprefix("$.").split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _notice(template: Template, rule: str, event: dict[str, Any]) -> str:
    """The notice the rule's input transformer makes of ``event`` (with the stack named stack)."""
    (target,) = _rule(template, rule)["Properties"]["Targets"]
    transformer = target["InputTransformer"]
    body = transformer["InputTemplate"]
    if isinstance(body, dict):
        body = body["Fn::Sub"]
    body = body.replace("${AWS::StackName}", "stack")
    assert "${" not in body
    paths = transformer["InputPathsMap"]
    # every placeholder is mapped, so EventBridge substitutes it
    assert set(re.findall(r"<(\w+)>", body)) <= set(paths)
    for name, path in paths.items():
        body = body.replace(f"<{name}>", str(_json_path(event, path)))
    text: str = json.loads(body)  # the template is a JSON string: SNS gets plain text
    return text


def test_the_failure_notice_names_the_secret_the_step_and_the_logs(template: Template) -> None:
    # GIVEN the documented RotationFailed event / WHEN the rule's transformer renders it
    notice = _notice(template, "RotationFailedRule", rotation_event("RotationFailed"))
    # THEN the notice names the event, the secret, the failing step and where the cause is
    assert notice.startswith("RotationFailed for the SES SMTP secret " + SECRET_ARN)
    assert "during testSecret step" in notice
    assert "/aws/lambda/stack-ses-smtp-rotation" in notice
    assert "None" not in notice


def test_the_success_notice_names_the_secret(template: Template) -> None:
    notice = _notice(template, "RotationSucceededRule", rotation_event("RotationSucceeded"))
    assert notice.startswith("RotationSucceeded for the SES SMTP secret " + SECRET_ARN)


# --- destinations, topic policy, conditions ----------------------------------------------------

NOTICE_TOPIC = {"Fn::If": ["HasAlarmTopic", {"Ref": "AlarmTopicArn"}, {"Ref": "NoticeTopic"}]}


def notice_problems(template: Template) -> list[str]:
    """Where the notices go, the topic policy and the conditions of the optional resources."""
    resources = template["Resources"]
    problems = []
    conditions = {
        "NoticeTopic": "CreateNoticeTopic",
        "NoticeSubscription": "CreateNoticeTopic",
        "NoticeTopicPolicy": "CreateNoticeTopic",
        "RotationFailedRule": "HasNoticeTopic",
        "RotationSucceededRule": "NoticeOnSuccess",
        "RotationDashboard": "WantDashboard",
    }
    problems += [
        f"{name} has condition {resources[name].get('Condition')!r}, expected {condition!r}"
        for name, condition in conditions.items()
        if resources[name].get("Condition") != condition
    ]
    rules = [name for name, res in resources.items() if res["Type"] == "AWS::Events::Rule"]
    for name in rules:
        targets = resources[name]["Properties"]["Targets"]
        problems += [f"{name} targets {t['Arn']!r}" for t in targets if t["Arn"] != NOTICE_TOPIC]
    for name in ("RotationFunctionErrorsAlarm", "RotationOverdueAlarm"):
        for key in ("AlarmActions", "OKActions"):
            expected = {"Fn::If": ["HasNoticeTopic", [NOTICE_TOPIC], {"Ref": "AWS::NoValue"}]}
            if resources[name]["Properties"].get(key) != expected:
                problems.append(f"{name} {key} does not notify the notice topic")
    parameters = template["Parameters"]
    problems += [
        f"{name} defaults to {parameters[name]['Default']!r}"
        for name in ("CreateDashboard", "NotifyOnSuccess")
        if parameters[name]["Default"] != "false"
    ]
    return problems + topic_policy_problems(template, rules)


def topic_policy_problems(template: Template, rules: list[str]) -> list[str]:
    """Each statement of the topic's policy: one service, sns:Publish, a source condition."""
    policy = template["Resources"]["NoticeTopicPolicy"]["Properties"]
    problems = []
    if policy["Topics"] != [{"Ref": "NoticeTopic"}]:
        problems.append(f"the policy applies to {policy['Topics']!r}")
    by_service: dict[str, dict[str, Any]] = {}
    for statement in policy["PolicyDocument"]["Statement"]:
        principal = statement.get("Principal")
        if not (isinstance(principal, dict) and set(principal) == {"Service"}):
            problems.append(f"statement {statement.get('Sid')} has principal {principal!r}")
            continue
        by_service[principal["Service"]] = statement
        if statement.get("Action") != "sns:Publish" or statement.get("Effect") != "Allow":
            problems.append(f"statement {statement.get('Sid')} allows {statement.get('Action')}")
        if statement.get("Resource") != {"Ref": "NoticeTopic"}:
            problems.append(f"statement {statement.get('Sid')} is on {statement.get('Resource')}")
    events = by_service.get("events.amazonaws.com", {})
    sources = events.get("Condition", {}).get("ArnEquals", {}).get("aws:SourceArn", [])
    allowed = [
        source["Fn::If"][1] if isinstance(source, dict) and "Fn::If" in source else source
        for source in sources
    ]
    if sorted(str(a) for a in allowed) != sorted(str({"Fn::GetAtt": [r, "Arn"]}) for r in rules):
        problems.append(f"events.amazonaws.com may publish from {sources!r}, not only the rules")
    alarms = by_service.get("cloudwatch.amazonaws.com", {}).get("Condition", {})
    alarm_arn = alarms.get("ArnLike", {}).get("aws:SourceArn", {}).get("Fn::Sub", "")
    if not alarm_arn.endswith(":alarm:${AWS::StackName}-*") or "aws:SourceAccount" not in str(
        alarms
    ):
        problems.append(f"cloudwatch.amazonaws.com may publish for {alarms!r}")
    unknown = set(by_service) - {"events.amazonaws.com", "cloudwatch.amazonaws.com"}
    problems += [f"{service} may publish" for service in sorted(unknown)]
    return problems


def test_notices_go_to_one_topic_that_only_this_stack_may_publish_to(template: Template) -> None:
    assert notice_problems(template) == []


def test_the_template_refuses_both_a_topic_and_an_email(template: Template) -> None:
    # GIVEN the template's rules / THEN NotificationEmail requires an empty AlarmTopicArn
    rule = template["Rules"]["OneNoticeTopic"]
    assert rule["RuleCondition"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "NotificationEmail"}, ""]}]
    }
    (assertion,) = rule["Assertions"]
    assert assertion["Assert"] == {"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}


# --- overdue alarm ---------------------------------------------------------------------------


def _rate_hours(expression: str) -> int:
    match = RATE.fullmatch(expression)
    assert match is not None, expression
    return int(match.group(1)) * (24 if match.group(2).startswith("day") else 1)


def overdue_problems(template: Template) -> list[str]:
    """The overdue alarm watches what the sweep emits, with a threshold past the schedule."""
    alarm = template["Resources"]["RotationOverdueAlarm"]["Properties"]
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    problems = []
    (stat,) = [m for m in alarm["Metrics"] if "MetricStat" in m]
    metric = stat["MetricStat"]["Metric"]
    namespace = variables["POWERTOOLS_METRICS_NAMESPACE"]
    if "${AWS::StackName}" not in str(namespace):
        problems.append(f"the namespace {namespace!r} is shared by every stack of the account")
    expected = {
        "Namespace": namespace,
        "MetricName": "SecondsSinceLastRotation",
        "Dimensions": [
            {"Name": "service", "Value": variables["POWERTOOLS_SERVICE_NAME"]},
            {"Name": "Step", "Value": sweep.ACTION},
        ],
    }
    if metric != expected:
        problems.append(f"the alarm watches {metric!r}, the sweep emits {expected!r}")
    if f'name="{metric.get("MetricName")}"' not in SWEEP_SOURCE:
        problems.append("the sweep does not emit the alarm's metric")
    (shown,) = [m for m in alarm["Metrics"] if m.get("ReturnData")]
    if shown.get("Expression") != f"{stat['Id']} / 3600":
        problems.append(f"the alarm compares {shown.get('Expression')!r} with hours")
    if alarm.get("Threshold") != {"Ref": "RotationOverdueHours"}:
        problems.append(f"threshold {alarm.get('Threshold')!r}")
    if alarm.get("TreatMissingData") != "breaching":
        problems.append("a sweep that stopped reporting does not alarm")
    # the sweep runs hourly: the alarm waits for several missed sweeps, not one
    if stat["MetricStat"]["Period"] != 3600 or alarm.get("EvaluationPeriods", 0) < 2:
        problems.append("the alarm fires on one missed hourly sweep")
    parameters = template["Parameters"]
    interval = _rate_hours(parameters["RotationSchedule"]["Default"])
    if int(parameters["RotationOverdueHours"]["Default"]) <= interval:
        problems.append("the default threshold does not exceed the default schedule")
    return problems


def test_the_overdue_alarm_watches_the_sweeps_metric(template: Template) -> None:
    assert overdue_problems(template) == []


# --- dashboard ----------------------------------------------------------------------------------

DASHBOARD_METRICS = {
    "RotationStepSucceeded",
    "RotationStepFailed",
    "SmtpTestDuration",
    "SmtpAuthAttempts",
    "AccessKeysRetired",
    "OldKeyUsedAfterPromotion",
    "SecondsSinceLastRotation",
    "Errors",
}


def stack_sub(value: object) -> str:
    """Render a literal or a ``!Sub`` that names only the stack (as ``stack``)."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        value = value["Fn::Sub"].replace("${AWS::StackName}", "stack")
    assert isinstance(value, str), value
    assert "${" not in value, value
    return value


def dashboard_body(template: Template) -> dict[str, Any]:
    """The dashboard's JSON with the stack's values substituted."""
    text, names = template["Resources"]["RotationDashboard"]["Properties"]["DashboardBody"][
        "Fn::Sub"
    ]
    values = {"AWS::Region": "eu-west-1", "RotationFunction": "fn", "RotationOverdueHours": "768"}
    values.update({name: stack_sub(value) for name, value in names.items()})
    rendered = re.sub(r"\$\{([\w:]+)\}", lambda m: str(values[m.group(1)]), text)
    body: dict[str, Any] = json.loads(rendered)
    return body


def dashboard_problems(template: Template) -> list[str]:
    body = dashboard_body(template)
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    rows = [row for widget in body["widgets"] for row in widget["properties"]["metrics"]]
    full = [row for row in rows if isinstance(row[0], str) and row[0] != "..."]
    shown = {row[1] for row in full}
    problems = [f"the dashboard lacks {name}" for name in sorted(DASHBOARD_METRICS - shown)]
    namespaces = {row[0] for row in full} - {"AWS/Lambda"}
    if namespaces != {stack_sub(variables["POWERTOOLS_METRICS_NAMESPACE"])}:
        problems.append(f"namespaces {namespaces}")
    services = {row[row.index("service") + 1] for row in full if "service" in row}
    if services != {variables["POWERTOOLS_SERVICE_NAME"]}:
        problems.append(f"service dimensions {services}")
    steps = {row[row.index("Step") + 1] for row in full if "Step" in row}
    steps |= {row[1] for row in rows if row[0] == "..." and isinstance(row[1], str)}
    problems += [
        f"no {step} series"
        for step in ("createSecret", "setSecret", "testSecret", "finishSecret", sweep.ACTION)
        if step not in steps
    ]
    return problems


def test_the_dashboard_shows_the_functions_metrics(template: Template) -> None:
    assert dashboard_problems(template) == []


# --- each check can fail --------------------------------------------------------------------------


def _open_topic(template: Template) -> None:
    statements = template["Resources"]["NoticeTopicPolicy"]["Properties"]["PolicyDocument"]
    del statements["Statement"][0]["Condition"]


def _any_principal(template: Template) -> None:
    statements = template["Resources"]["NoticeTopicPolicy"]["Properties"]["PolicyDocument"]
    statements["Statement"][0]["Principal"] = "*"


def _alarm_on_old_topic(template: Template) -> None:
    alarm = template["Resources"]["RotationOverdueAlarm"]["Properties"]
    alarm["AlarmActions"] = {
        "Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]
    }


def _dashboard_always(template: Template) -> None:
    del template["Resources"]["RotationDashboard"]["Condition"]


def _missing_not_breaching(template: Template) -> None:
    template["Resources"]["RotationOverdueAlarm"]["Properties"]["TreatMissingData"] = "missing"


def _wrong_step(template: Template) -> None:
    alarm = template["Resources"]["RotationOverdueAlarm"]["Properties"]
    alarm["Metrics"][0]["MetricStat"]["Metric"]["Dimensions"][1]["Value"] = "finishSecret"


def _shared_namespace(template: Template) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    variables["POWERTOOLS_METRICS_NAMESPACE"] = "SesSmtpRotation"


def _short_threshold(template: Template) -> None:
    template["Parameters"]["RotationOverdueHours"]["Default"] = 24


def _drop_auth_attempts(template: Template) -> None:
    body = template["Resources"]["RotationDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    body[0] = body[0].replace('"SmtpAuthAttempts"', '"SmtpAuthAttemptz"')


@pytest.mark.parametrize(
    ("mutate", "check", "expected"),
    [
        pytest.param(_open_topic, notice_problems, "not only the rules", id="no-source-arn"),
        pytest.param(_any_principal, notice_problems, "principal", id="any-principal"),
        pytest.param(_alarm_on_old_topic, notice_problems, "AlarmActions", id="alarm-topic"),
        pytest.param(_dashboard_always, notice_problems, "RotationDashboard", id="dashboard"),
        pytest.param(_missing_not_breaching, overdue_problems, "stopped", id="missing-data"),
        pytest.param(_wrong_step, overdue_problems, "the sweep emits", id="dimensions"),
        pytest.param(_short_threshold, overdue_problems, "default threshold", id="threshold"),
        pytest.param(_shared_namespace, overdue_problems, "shared", id="shared-namespace"),
        pytest.param(_drop_auth_attempts, dashboard_problems, "SmtpAuthAttempts", id="widget"),
    ],
)
def test_checker_flags_a_broken_template(
    template: Template,
    mutate: Callable[[Template], None],
    check: Callable[[Template], list[str]],
    expected: str,
) -> None:
    broken = copy.deepcopy(template)
    mutate(broken)
    assert any(expected in problem for problem in check(broken)), check(broken)
    assert check(template) == []
