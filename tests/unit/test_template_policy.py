"""Least privilege and house rules of template.yaml, checked offline.

A policy statement is *scoped* when each possible Resource (both branches of an ``!If``) is the
one secret, the one SMTP user's ARN, the optional KMS key or SES identity parameter, the
function's own log group, or the stack's own (dead-letter) queue. Anything else (``*``, a
wildcard ARN, an action wildcard, NotResource, a managed policy, a SAM policy template) needs a
comment containing ``justification:`` in the comment block directly above the statement (or the
``ManagedPolicyArns`` key), or on its first line.
Each check is a function returning problems, so the mutation tests can prove it can fail.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from rotation_handler import notices
from rotation_handler.settings import DEFAULT_FLEET_TAG_KEY, MAX_GRACE_PERIOD, Settings
from ses_smtp_rotator.contract import BINDING_TAG, FUNCTION_TAGS, INTENT_TAG, RETIRE_TAG
from tools import cfn_yaml
from tools.cfn_yaml import Located

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
HANDLER_SOURCES = Path(__file__).resolve().parents[2] / "src" / "rotation_handler"
JUSTIFICATION = "justification:"
USER_ARN = re.compile(r"^arn:\$\{AWS::Partition\}:iam::\$\{AWS::AccountId\}:user/\$\{\w+\}$")
SCOPED_PARAMETERS = ("KmsKeyArn", "SesIdentityArn")
CONTRACT_VARIABLES = {
    "SECRET_ARN",
    "SMTP_IAM_USER_NAME",
    "SMTP_TEST_TIMEOUT_SECONDS",
    "OLD_KEY_ACTION",
    "STORE_SECRET_ACCESS_KEY",
    "SES_REGION",
    "SMTP_HOST",
    "SMTP_PORT",
    "OLD_KEY_GRACE_PERIOD",
    "EXTRA_SES_REGIONS",
}

Template = dict[str, Any]
Problems = list[str]


def load_template(text: str) -> Template:
    loaded: Template = cfn_yaml.parse(text)
    return loaded


# --- policy scoping -----------------------------------------------------------------------------


def alternatives(value: object) -> list[Any]:
    """Every value ``value`` can take: lists flattened, both ``!If`` branches, no AWS::NoValue."""
    if isinstance(value, list):
        return [item for element in value for item in alternatives(element)]
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        _, when_true, when_false = value["Fn::If"]
        return alternatives(when_true) + alternatives(when_false)
    if value == {"Ref": "AWS::NoValue"}:
        return []
    return [value]


def sub_string(value: object) -> str | None:
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        sub = value["Fn::Sub"]
        return str(sub[0] if isinstance(sub, list) else sub)
    return None


# The default event bus of the stack's account and region, where the failure notice goes.
DEFAULT_BUS = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"


def _scoped_resources(template: Template) -> tuple[list[object], list[str]]:
    resources = template["Resources"]
    refs: list[object] = [
        {"Ref": name}
        for name, resource in resources.items()
        if resource["Type"] == "AWS::SecretsManager::Secret"
    ]
    refs += [{"Ref": name} for name in SCOPED_PARAMETERS if name in template.get("Parameters", {})]
    # The stack's own queues (the dead-letter queue of asynchronous invocations).
    refs += [
        {"Fn::GetAtt": form}
        for name, resource in resources.items()
        if resource["Type"] == "AWS::SQS::Queue"
        for form in (f"{name}.Arn", [name, "Arn"])
    ]
    log_arns = [
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
        f"{sub_string(resource['Properties']['LogGroupName'])}:*"
        for resource in resources.values()
        if resource["Type"] == "AWS::Logs::LogGroup"
    ]
    # The stack's own function, by its fixed name (RotateSecret's caller needs to invoke it).
    log_arns += [
        "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:"
        f"{sub_string(resource['Properties']['FunctionName'])}"
        for resource in resources.values()
        if resource["Type"] == "AWS::Serverless::Function"
        and "FunctionName" in resource.get("Properties", {})
    ]
    return refs, log_arns


def _is_scoped(resource: object, template: Template) -> bool:
    refs, log_arns = _scoped_resources(template)
    sub = sub_string(resource)
    # The stack itself: the key clean-up asks CloudFormation about its own stack's resources.
    own_stack = resource == {"Ref": "AWS::StackId"}
    return (
        own_stack
        or sub == DEFAULT_BUS
        or resource in refs
        or (sub is not None and (bool(USER_ARN.match(sub)) or sub in log_arns))
    )


def is_justified(lines: Sequence[str], node: object, line: int | None = None) -> bool:
    """Whether a ``justification:`` comment sits on ``line`` or in the comment block above it."""
    if line is None:
        line = node.first_line if isinstance(node, Located) else -1
    if line < 0:
        return False
    block = [lines[line].partition("#")[2]]
    above = line - 1
    while above >= 0 and lines[above].lstrip().startswith("#"):
        block.append(lines[above])
        above -= 1
    return any(JUSTIFICATION in comment for comment in block)


def _statement_problems(
    owner: str, statement: dict[str, Any], template: Template, lines: Sequence[str]
) -> Problems:
    if is_justified(lines, statement):
        return []
    name = f"{owner} statement {statement.get('Sid', '?')}"
    problems = [f"{name}: uses {key}" for key in ("NotResource", "NotAction") if key in statement]
    actions = alternatives(statement.get("Action", []))
    problems += [f"{name}: action wildcard {action!r}" for action in actions if "*" in action]
    problems += [
        f"{name}: Resource {resource!r} is not the one user, secret, key, log group or function"
        for resource in alternatives(statement.get("Resource", []))
        if not _is_scoped(resource, template)
    ]
    return problems


def _documents(resource: dict[str, Any]) -> Iterator[dict[str, Any]]:
    properties = resource.get("Properties", {})
    if "PolicyDocument" in properties:
        yield properties["PolicyDocument"]
    for policy in alternatives(properties.get("Policies", [])):
        if isinstance(policy, dict) and "PolicyDocument" in policy:
            yield policy["PolicyDocument"]
        elif isinstance(policy, dict) and "Statement" in policy:
            yield policy  # a SAM function's inline policy document


def _sam_policy_problems(name: str, resource: dict[str, Any], lines: Sequence[str]) -> Problems:
    """SAM policy templates and managed policies cannot be inspected offline: refuse them."""
    policies = alternatives(resource.get("Properties", {}).get("Policies", []))
    return [
        f"{name}: SAM policy template or managed policy {policy!r} (may grant '*')"
        for policy in policies
        if not (isinstance(policy, dict) and "Statement" in policy)
        and not is_justified(lines, policy)
    ]


def _managed_policy_problems(name: str, resource: dict[str, Any], lines: Sequence[str]) -> Problems:
    properties = resource.get("Properties", {})
    if "ManagedPolicyArns" not in properties:
        return []
    key_line = (
        properties.key_lines.get("ManagedPolicyArns") if isinstance(properties, Located) else None
    )
    if is_justified(lines, properties, key_line):
        return []
    return [f"{name}: ManagedPolicyArns without a justification"]


def policy_problems(template: Template, lines: Sequence[str]) -> Problems:
    """Unscoped, unjustified permissions in IAM resources and SAM functions."""
    problems: Problems = []
    for name, resource in template["Resources"].items():
        kind = resource["Type"]
        if kind == "AWS::Serverless::Function":
            problems += _sam_policy_problems(name, resource, lines)
        if kind.startswith("AWS::IAM::"):
            problems += _managed_policy_problems(name, resource, lines)
        if kind.startswith("AWS::IAM::") or kind == "AWS::Serverless::Function":
            for document in _documents(resource):
                for statement in alternatives(document["Statement"]):
                    problems += _statement_problems(name, statement, template, lines)
    return problems


# --- house rules ----------------------------------------------------------------------------------


def _of_type(template: Template, kind: str) -> list[dict[str, Any]]:
    return [res for res in template["Resources"].values() if res["Type"] == kind]


def description_problems(template: Template) -> Problems:
    sections = ("Parameters", "Outputs")
    return [
        f"{section} {name} has no Description"
        for section in sections
        for name, entry in template.get(section, {}).items()
        if not str(entry.get("Description", "")).strip()
    ]


def rotation_problems(template: Template) -> Problems:
    problems = [
        "Lambda permission without SourceAccount"
        for permission in _of_type(template, "AWS::Lambda::Permission")
        if "SourceAccount" not in permission["Properties"]
    ]
    schedules = _of_type(template, "AWS::SecretsManager::RotationSchedule")
    if len(schedules) != 1:
        problems.append(f"expected one RotationSchedule, found {len(schedules)}")
    problems += [
        "RotationSchedule does not rotate immediately on update"
        for schedule in schedules
        if schedule["Properties"].get("RotateImmediatelyOnUpdate") is not True
    ]
    return problems


def function_problems(template: Template) -> Problems:
    functions = _of_type(template, "AWS::Serverless::Function")
    if len(functions) != 1:
        return [f"expected one function, found {len(functions)}"]
    merged = {**template.get("Globals", {}).get("Function", {}), **functions[0]["Properties"]}
    expected = {
        "Runtime": "python3.13",
        "Architectures": ["arm64"],
        "Tracing": "Active",
        "Handler": "rotation_handler.app.lambda_handler",
        "CodeUri": "src/",
    }
    problems = [
        f"function {key} is {merged.get(key)!r}, expected {value!r}"
        for key, value in expected.items()
        if merged.get(key) != value
    ]
    variables = set(functions[0]["Properties"].get("Environment", {}).get("Variables", {}))
    problems += [f"function environment lacks {name}" for name in CONTRACT_VARIABLES - variables]
    return problems


# --- hardening: tag keys, concurrency, timeout, the stored API key -------------------------------

TAG_ACTIONS = ("iam:taguser", "iam:untaguser")
# The tag keys the function writes on the SMTP user (its rotation intent, the grace period's
# start); a single-secret function also binds its one user to its secret, a fleet function never.
WRITTEN_TAG_KEYS = {INTENT_TAG, RETIRE_TAG}
BINDING_TAG_KEYS = WRITTEN_TAG_KEYS | {BINDING_TAG}
# What the key clean-up removes: the function's records, and the owner record of older versions.
REMOVED_TAG_KEYS = set(FUNCTION_TAGS)
ALLOWED_TAG_KEYS = BINDING_TAG_KEYS | REMOVED_TAG_KEYS
# Lambda's documented floor for a rotation function's concurrency (below it, steps are throttled).
MIN_CONCURRENCY = 10
# What a step's IAM, KMS and Secrets Manager calls may take besides the SMTP test: about a dozen
# calls, each retried by the SDK (standard mode: up to 5 attempts, back-off capped at 20 s).
AWS_CALLS_ALLOWANCE = 60
# What the handler keeps back from the remaining time for the calls after the SMTP test.
RESERVE_SECONDS = 5


def _tagging_actions(statement: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(actions that can tag or untag a user, every action) of a statement; wildcards count."""
    actions = {str(action) for action in alternatives(statement.get("Action", []))}
    tagging = {
        action
        for action in actions
        if any(fnmatch.fnmatchcase(tag, action.lower()) for tag in TAG_ACTIONS)
    }
    return tagging, actions


def tag_problems(template: Template, *, binds: bool = True) -> Problems:
    """iam:TagUser/UntagUser each alone, only for the function's own tag keys (and some key).

    ``binds``: the template's function may write the binding tag (a single-secret function).
    """
    expected = {
        "iam:TagUser": BINDING_TAG_KEYS if binds else WRITTEN_TAG_KEYS,
        "iam:UntagUser": REMOVED_TAG_KEYS,
    }
    problems: Problems = []
    for name, resource in template["Resources"].items():
        kind = resource["Type"]
        if not (kind.startswith("AWS::IAM::") or kind == "AWS::Serverless::Function"):
            continue
        for document in _documents(resource):
            for statement in alternatives(document["Statement"]):
                tagging, actions = _tagging_actions(statement)
                if not tagging or statement.get("Effect") != "Allow":
                    continue
                where = f"{name} statement {statement.get('Sid', '?')}"
                condition = statement.get("Condition", {})
                keys = condition.get("ForAllValues:StringEquals", {}).get("aws:TagKeys")
                if actions - tagging or len(tagging) > 1:
                    problems.append(f"{where}: tagging shares a statement with other actions")
                if keys is None:
                    problems.append(f"{where}: tagging without an aws:TagKeys condition")
                elif set(alternatives(keys)) != expected.get(next(iter(tagging)), set()):
                    problems.append(f"{where}: tag keys {sorted(alternatives(keys))}")
                if condition.get("Null", {}).get("aws:TagKeys") != "false":
                    problems.append(f"{where}: no Null check on aws:TagKeys")
    return problems


def _merged_function(template: Template) -> dict[str, Any]:
    (function,) = _of_type(template, "AWS::Serverless::Function")
    return {**template.get("Globals", {}).get("Function", {}), **function["Properties"]}


def concurrency_problems(template: Template) -> Problems:
    merged = _merged_function(template)
    settings = {
        "ReservedConcurrentExecutions": merged.get("ReservedConcurrentExecutions"),
        "ProvisionedConcurrentExecutions": merged.get("ProvisionedConcurrencyConfig", {}).get(
            "ProvisionedConcurrentExecutions"
        ),
    }
    return [
        f"{key} {value!r} is below {MIN_CONCURRENCY}"
        for key, value in settings.items()
        if value is not None and not (isinstance(value, int) and value >= MIN_CONCURRENCY)
    ]


def timeout_problems(template: Template) -> Problems:
    timeout = _merged_function(template).get("Timeout")
    parameter = template["Parameters"]["SmtpTestTimeoutSeconds"]
    needed = int(parameter["MaxValue"]) + RESERVE_SECONDS + AWS_CALLS_ALLOWANCE
    if not isinstance(timeout, int) or timeout < needed:
        return [f"function Timeout {timeout!r} is below {needed} s (SMTP budget + AWS calls)"]
    if f"function timeout is {timeout}" not in str(parameter["Description"]):
        return [f"SmtpTestTimeoutSeconds' description does not say the timeout is {timeout}"]
    return []


def store_key_problems(template: Template) -> Problems:
    default = template["Parameters"]["StoreSecretAccessKey"].get("Default")
    return [] if default == "false" else [f"StoreSecretAccessKey defaults to {default!r}"]


def hardening_problems(template: Template) -> Problems:
    return (
        tag_problems(template)
        + concurrency_problems(template)
        + timeout_problems(template)
        + store_key_problems(template)
    )


# --- the real template ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def text() -> str:
    return TEMPLATE.read_text(encoding="utf-8")


@pytest.fixture
def template(text: str) -> Template:
    return load_template(text)


def test_every_permission_is_scoped_or_justified(template: Template, text: str) -> None:
    # GIVEN the template / WHEN its IAM statements are checked
    problems = policy_problems(template, text.splitlines())
    # THEN each one is scoped to the user, the secret, the key or the log group, or justified
    assert problems == []


def test_the_unscoped_statements_are_exactly_the_justified_ones(
    template: Template, text: str
) -> None:
    # GIVEN the template with its justification comments removed
    lines = [line.replace(JUSTIFICATION, "reason:") for line in text.splitlines()]
    # WHEN its statements are checked
    problems = policy_problems(template, lines)
    # THEN only the documented exceptions surface: SES send on "*", X-Ray, the VPC managed policy
    assert len(problems) == 3, problems
    assert any("SendMailOverSmtp" in problem and "'*'" in problem for problem in problems)
    assert any("SendActiveTracingSegments" in problem for problem in problems)
    assert any("ManagedPolicyArns" in problem for problem in problems)


def test_house_rules_hold(template: Template) -> None:
    # GIVEN the template / WHEN the house rules are checked / THEN none is broken
    assert description_problems(template) == []
    assert rotation_problems(template) == []
    assert function_problems(template) == []


def test_hardening_rules_hold(template: Template) -> None:
    # GIVEN the template / WHEN tagging, concurrency, timeout and the key default are checked
    # THEN tagging is limited to the function's tag keys, concurrency is not capped below 10, the
    # timeout covers the SMTP budget and the AWS calls, and the API key is not stored by default
    assert hardening_problems(template) == []
    assert tag_problems(template) == []  # and the tagging statement exists (next test)
    tagging = [
        statement
        for statement in _role_statements(template)
        if isinstance(statement, dict) and _tagging_actions(statement)[0]
    ]
    assert [s["Sid"] for s in tagging] == [
        "TagTheSmtpUserWithRotationRecords",
        "UntagTheSmtpUsersRotationRecords",
    ]


def test_the_key_clean_up_may_untag_only_the_function_s_own_records(template: Template) -> None:
    # GIVEN the role / WHEN the statements allowing iam:UntagUser are collected (the custom
    # resource Custom::SmtpUserKeys removes the function's records when an app is deleted)
    untagging = [
        statement
        for statement in _role_statements(template)
        if isinstance(statement, dict)
        and "iam:UntagUser" in alternatives(statement.get("Action", []))
    ]
    # THEN exactly the untagging statement allows it, under its tag-key condition
    assert [s["Sid"] for s in untagging] == ["UntagTheSmtpUsersRotationRecords"]
    assert tag_problems(template) == []


def test_the_function_writes_only_allowed_tag_keys() -> None:
    # GIVEN the rotation function's sources and the contract module that names its tags
    sources = [
        *HANDLER_SOURCES.glob("*.py"),
        HANDLER_SOURCES.parent / "ses_smtp_rotator" / "contract.py",
    ]
    written = {
        match
        for path in sources
        for match in re.findall(r"ses-smtp-rotation:[\w-]+", path.read_text(encoding="utf-8"))
    }
    # THEN the template's conditions name each of them (the fleet's tag is only read, on secrets)
    assert written
    assert written - {DEFAULT_FLEET_TAG_KEY, notices.FAILING_TAG} <= ALLOWED_TAG_KEYS


def test_bootstrap_secret_holds_only_what_a_stack_update_may_replace(template: Template) -> None:
    # GIVEN the secret's SecretString template (CloudFormation writes it over AWSCURRENT whenever
    # it changes)
    (secret,) = _of_type(template, "AWS::SecretsManager::Secret")
    body = sub_string(secret["Properties"]["SecretString"])
    assert body is not None
    # WHEN CloudFormation substitutes the parameters
    rendered = re.sub(
        r"\$\{(\w+)\}", lambda match: {"UserName": "stack-ses-smtp"}[match.group(1)], body
    )
    # THEN it is JSON naming only the user: region, host and port are the function's environment
    assert json.loads(rendered) == {"iam_user_name": "stack-ses-smtp"}
    variables = _function(template)["Environment"]["Variables"]
    assert {"SES_REGION", "SMTP_HOST", "SMTP_PORT"} <= set(variables)


def test_rotation_waits_for_the_invoke_permission(template: Template) -> None:
    # GIVEN the rotation schedule / THEN it is created after Secrets Manager may invoke the function
    (schedule,) = _of_type(template, "AWS::SecretsManager::RotationSchedule")
    (permission_name,) = [
        name
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Permission"
    ]
    assert permission_name in alternatives(schedule["DependsOn"])


# --- each check can fail --------------------------------------------------------------------------


def _role_statements(template: Template) -> list[Any]:
    (role,) = _of_type(template, "AWS::IAM::Role")
    statements: list[Any] = role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    return statements


def _by_sid(template: Template, sid: str) -> dict[str, Any]:
    (statement,) = [
        s for s in _role_statements(template) if isinstance(s, dict) and s.get("Sid") == sid
    ]
    return statement


def _function(template: Template) -> dict[str, Any]:
    (function,) = _of_type(template, "AWS::Serverless::Function")
    props: dict[str, Any] = function["Properties"]
    return props


def _add_star_statement(template: Template) -> None:
    _role_statements(template).append({"Effect": "Allow", "Action": "iam:*", "Resource": "*"})


def _widen_user_arn(template: Template) -> None:
    _by_sid(template, "RotateTheSmtpUsersAccessKeys")["Resource"] = {
        "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:user/*"
    }


def _widen_secret(template: Template) -> None:
    _by_sid(template, "RotateTheOneSecret")["Resource"] = [
        {"Ref": "SmtpSecret"},
        {
            "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:"
            "${AWS::AccountId}:secret:*"
        },
    ]


def _add_sam_policy_template(template: Template) -> None:
    _function(template)["Policies"] = [{"AWSSecretsManagerRotationPolicy": {"FunctionName": "f"}}]


def _add_iam_policy_resource(template: Template) -> None:
    template["Resources"]["Extra"] = {
        "Type": "AWS::IAM::Policy",
        "Properties": {
            "PolicyDocument": {
                "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]
            }
        },
    }


def _drop_output_description(template: Template) -> None:
    del template["Outputs"]["SecretArn"]["Description"]


def _drop_parameter_description(template: Template) -> None:
    del template["Parameters"]["SmtpPort"]["Description"]


def _drop_source_account(template: Template) -> None:
    (permission,) = _of_type(template, "AWS::Lambda::Permission")
    del permission["Properties"]["SourceAccount"]


def _no_immediate_rotation(template: Template) -> None:
    (schedule,) = _of_type(template, "AWS::SecretsManager::RotationSchedule")
    schedule["Properties"]["RotateImmediatelyOnUpdate"] = False


def _older_runtime(template: Template) -> None:
    _function(template)["Runtime"] = "python3.12"


def _x86(template: Template) -> None:
    template["Globals"]["Function"]["Architectures"] = ["x86_64"]


def _passive_tracing(template: Template) -> None:
    template["Globals"]["Function"]["Tracing"] = "PassThrough"


def _drop_contract_variable(template: Template) -> None:
    del _function(template)["Environment"]["Variables"]["OLD_KEY_ACTION"]


def _tagging_in_main_statement(template: Template) -> None:
    _by_sid(template, "RotateTheSmtpUsersAccessKeys")["Action"].append("iam:TagUser")


def _tag_wildcard_in_main_statement(template: Template) -> None:
    _by_sid(template, "RotateTheSmtpUsersAccessKeys")["Action"].append("iam:*Tag*")


def _drop_tag_condition(template: Template) -> None:
    del _by_sid(template, "TagTheSmtpUserWithRotationRecords")["Condition"]


def _extra_tag_key(template: Template) -> None:
    condition = _by_sid(template, "TagTheSmtpUserWithRotationRecords")["Condition"]
    condition["ForAllValues:StringEquals"]["aws:TagKeys"].append("team")


def _drop_null_check(template: Template) -> None:
    del _by_sid(template, "TagTheSmtpUserWithRotationRecords")["Condition"]["Null"]


def _untag_any_key(template: Template) -> None:
    _role_statements(template).append(
        {"Sid": "Untag", "Effect": "Allow", "Action": "iam:UntagUser", "Resource": "*"}
    )


def _low_reserved_concurrency(template: Template) -> None:
    _function(template)["ReservedConcurrentExecutions"] = 5


def _low_provisioned_concurrency(template: Template) -> None:
    _function(template)["ProvisionedConcurrencyConfig"] = {"ProvisionedConcurrentExecutions": 2}


def _short_timeout(template: Template) -> None:
    template["Globals"]["Function"]["Timeout"] = 60


def _stale_timeout_description(template: Template) -> None:
    template["Parameters"]["SmtpTestTimeoutSeconds"]["Description"] = "the function timeout is 60"


def _store_key_by_default(template: Template) -> None:
    template["Parameters"]["StoreSecretAccessKey"]["Default"] = "true"


def _hardening_check(template: Template, _lines: Sequence[str]) -> Problems:
    return hardening_problems(template)


def _policy_check(template: Template, lines: Sequence[str]) -> Problems:
    return policy_problems(template, lines)


def _rules_check(template: Template, _lines: Sequence[str]) -> Problems:
    return (
        description_problems(template) + rotation_problems(template) + function_problems(template)
    )


@pytest.mark.parametrize(
    ("mutate", "check", "expected"),
    [
        pytest.param(_add_star_statement, _policy_check, "'*'", id="statement-on-star"),
        pytest.param(_add_star_statement, _policy_check, "action wildcard", id="action-wildcard"),
        pytest.param(_widen_user_arn, _policy_check, "user/*", id="any-user"),
        pytest.param(_widen_secret, _policy_check, "secret:*", id="any-secret"),
        pytest.param(
            _add_sam_policy_template, _policy_check, "SAM policy", id="sam-policy-template"
        ),
        pytest.param(_add_iam_policy_resource, _policy_check, "Extra", id="iam-policy-resource"),
        pytest.param(_drop_output_description, _rules_check, "SecretArn", id="output-description"),
        pytest.param(_drop_parameter_description, _rules_check, "SmtpPort", id="param-description"),
        pytest.param(_drop_source_account, _rules_check, "SourceAccount", id="source-account"),
        pytest.param(_no_immediate_rotation, _rules_check, "immediately", id="rotate-immediately"),
        pytest.param(_older_runtime, _rules_check, "python3.12", id="runtime"),
        pytest.param(_x86, _rules_check, "x86_64", id="architecture"),
        pytest.param(_passive_tracing, _rules_check, "PassThrough", id="tracing"),
        pytest.param(_drop_contract_variable, _rules_check, "OLD_KEY_ACTION", id="environment"),
        pytest.param(_tagging_in_main_statement, _hardening_check, "shares", id="tag-mixed"),
        pytest.param(
            _tag_wildcard_in_main_statement, _hardening_check, "aws:TagKeys", id="tag-wildcard"
        ),
        pytest.param(_drop_tag_condition, _hardening_check, "aws:TagKeys", id="tag-unconditioned"),
        pytest.param(_extra_tag_key, _hardening_check, "'team'", id="tag-extra-key"),
        pytest.param(_drop_null_check, _hardening_check, "Null", id="tag-no-null-check"),
        pytest.param(_untag_any_key, _hardening_check, "Untag", id="untag-any-key"),
        pytest.param(
            _low_reserved_concurrency, _hardening_check, "Reserved", id="reserved-concurrency"
        ),
        pytest.param(
            _low_provisioned_concurrency, _hardening_check, "Provisioned", id="provisioned"
        ),
        pytest.param(_short_timeout, _hardening_check, "Timeout 60", id="timeout"),
        pytest.param(
            _stale_timeout_description, _hardening_check, "description", id="timeout-description"
        ),
        pytest.param(_store_key_by_default, _hardening_check, "'true'", id="store-key-default"),
    ],
)
def test_checker_flags_a_broken_template(
    template: Template,
    text: str,
    mutate: Callable[[Template], None],
    check: Callable[[Template, Sequence[str]], Problems],
    expected: str,
) -> None:
    # GIVEN a copy of the template with one rule broken
    broken = copy.deepcopy(template)
    mutate(broken)
    # WHEN the checks run on it
    problems = check(broken, text.splitlines())
    # THEN the broken rule is reported, while the original still passes
    assert any(expected in problem for problem in problems), problems
    assert check(template, text.splitlines()) == []


def test_loader_reads_short_form_tags() -> None:
    # GIVEN CloudFormation short forms of each node kind
    text = "a: !Ref X\nb: !GetAtt F.Arn\nc: !If [C, 1, 2]\nd: !Sub {}\n"
    # WHEN loaded / THEN they become the long forms CloudFormation itself uses
    assert load_template(text) == {
        "a": {"Ref": "X"},
        "b": {"Fn::GetAtt": ["F", "Arn"]},
        "c": {"Fn::If": ["C", 1, 2]},
        "d": {"Fn::Sub": {}},
    }


def test_the_sweep_runs_on_a_schedule_with_its_event(template: Template) -> None:
    # GIVEN the function's events / THEN one schedule invokes it with the sweep's event for the
    # stack's secret
    events = _function(template)["Events"]
    (schedule,) = [e for e in events.values() if e["Type"] == "Schedule"]
    body = sub_string(schedule["Properties"]["Input"])
    assert body is not None
    rendered = body.replace("${SmtpSecret}", "arn:aws:secretsmanager:eu-west-1:1:secret:s")
    assert json.loads(rendered) == {
        "Action": "RetireOldKeys",
        "SecretId": "arn:aws:secretsmanager:eu-west-1:1:secret:s",
    }


@pytest.mark.parametrize(
    "value", ["0", "90s", "999999s", "30m", "99999m", "24h", "999h", "7d", "99d", "365d"]
)
def test_every_grace_period_the_template_allows_the_function_accepts(
    template: Template, value: str
) -> None:
    pattern = template["Parameters"]["OldKeyGracePeriod"]["AllowedPattern"]
    assert re.fullmatch(pattern, value)
    settings = Settings.from_env({"AWS_REGION": "us-east-1", "OLD_KEY_GRACE_PERIOD": value})
    assert settings.old_key_grace_period <= MAX_GRACE_PERIOD


@pytest.mark.parametrize("value", ["366d", "400d", "1000d", "1000h", "24", "1w", "-1h", ""])
def test_the_template_refuses_a_grace_period_the_function_would_refuse(
    template: Template, value: str
) -> None:
    pattern = template["Parameters"]["OldKeyGracePeriod"]["AllowedPattern"]
    assert not re.fullmatch(pattern, value)
