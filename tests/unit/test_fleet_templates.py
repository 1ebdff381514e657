"""Least privilege and the fleet contract of fleet/*.yaml, and template.yaml's SAR metadata.

The fleet function cannot name its secrets and users one by one, so "scoped" means something else
here than in test_template_policy.py: a statement is scoped when each Resource is

* the fleet's users, ``arn:${AWS::Partition}:iam::${AWS::AccountId}:user${UserPath}*``, for iam:
  actions only;
* secrets of the account, for secretsmanager: actions only, with the condition
  ``secretsmanager:ResourceTag/ses-smtp-rotation:fleet = FleetName``;
* the ``KmsKeyArn`` parameter, for kms: actions only, through Secrets Manager (``kms:ViaService``)
  and for secrets of the account (``kms:EncryptionContext:SecretARN``);
* a member account's role ``role/${CrossAccountRoleName}``, for sts:AssumeRole only;
* the function's log group, the fleet function itself for lambda:InvokeFunction, or the app's
  ``SesIdentityArn`` for ses: actions.

Anything else needs a ``justification:`` comment, and IAM or Secrets Manager actions never get
``*``, justified or not. Each check returns problems, so the mutation tests prove it can fail.
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import boto3
import pytest

from rotation_handler import cloudformation, notices
from rotation_handler.settings import Settings
from ses_smtp_rotator.contract import BINDING_TAG
from tests.unit.test_template_policy import (
    ALLOWED_TAG_KEYS,
    DEFAULT_BUS,
    MIN_CONCURRENCY,
    TEMPLATE,
    Problems,
    Template,
    alternatives,
    is_justified,
    load_template,
    sub_string,
    tag_problems,
    timeout_problems,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

ROOT: Final = Path(__file__).resolve().parents[2]
FLEET: Final = ROOT / "fleet"
FLEET_TAG_KEY: Final = "ses-smtp-rotation:fleet"
TAG_CONDITION: Final = f"secretsmanager:ResourceTag/{FLEET_TAG_KEY}"
USERS: Final = "arn:${AWS::Partition}:iam::${AWS::AccountId}:user${UserPath}*"
SECRETS: Final = re.compile(
    r"^arn:\$\{AWS::Partition\}:secretsmanager:(\$\{AWS::Region\}|\*):\$\{AWS::AccountId\}:secret:\*$"
)
MEMBER_ROLE: Final = "arn:${AWS::Partition}:iam::${Id}:role/${CrossAccountRoleName}"
SLOTS: Final = 10
# The function's environment in fleet mode (the names the contract fixes).
FLEET_VARIABLES: Final = {
    "FLEET_USER_PATH",
    "FLEET_TAG_KEY",
    "FLEET_TAG_VALUE",
    "CROSS_ACCOUNT_ROLE_NAME",
    "EXTRA_SES_REGIONS",
    "SMTP_TEST_TIMEOUT_SECONDS",
    "OLD_KEY_ACTION",
    "OLD_KEY_GRACE_PERIOD",
    "STORE_SECRET_ACCESS_KEY",
}
# What the Serverless Application Repository accepts (its CreateApplication API).
SAR_NAME: Final = re.compile(r"^[a-zA-Z0-9-]{1,140}$")
SAR_AUTHOR: Final = re.compile(r"^[a-z0-9](([a-z0-9]|-(?!-))*[a-z0-9])?$")
SAR_LABEL: Final = re.compile(r"^[a-zA-Z0-9+\-_:/@]{1,127}$")
SAR_DESCRIPTION_MAX: Final = 256
SAR_LABELS_MAX: Final = 10


def _of_type(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return {n: r for n, r in template["Resources"].items() if r["Type"] == kind}


def _statements(template: Template) -> Iterator[tuple[str, dict[str, Any]]]:
    """(owner, statement) of every identity policy of the IAM resources of ``template``."""
    for name, resource in template["Resources"].items():
        if not resource["Type"].startswith("AWS::IAM::"):
            continue
        for policy in alternatives(resource.get("Properties", {}).get("Policies", [])):
            for statement in alternatives(policy["PolicyDocument"]["Statement"]):
                yield name, statement


def load(name: str) -> tuple[Template, list[str]]:
    text = (FLEET / name).read_text(encoding="utf-8")
    return load_template(text), text.splitlines()


# --- policy scoping -----------------------------------------------------------------------------


def _log_groups(template: Template) -> list[str]:
    return [
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
        f"{sub_string(resource['Properties']['LogGroupName'])}:*"
        for resource in _of_type(template, "AWS::Logs::LogGroup").values()
    ]


def _tag_conditioned(statement: dict[str, Any]) -> bool:
    equals = statement.get("Condition", {}).get("StringEquals", {})
    return bool(equals.get(TAG_CONDITION) == {"Ref": "FleetName"})


def _kms_conditioned(statement: dict[str, Any]) -> bool:
    condition = statement.get("Condition", {})
    keys = {key for operator in condition.values() for key in operator}
    return {"kms:ViaService", "kms:EncryptionContext:SecretARN"} <= keys


def _member_role(resource: object) -> bool:
    if not (isinstance(resource, dict) and set(resource) == {"Fn::Sub"}):
        return False
    sub = resource["Fn::Sub"]
    return isinstance(sub, list) and sub[0] == MEMBER_ROLE and set(sub[1]) == {"Id"}


APP_STACKS = "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/*"


def _scope(resource: object, statement: dict[str, Any], template: Template) -> str | None:
    """The one service prefix a scoped Resource allows, or None when it is not scoped."""
    sub = sub_string(resource)
    scopes = {
        "iam": sub == USERS,
        "secretsmanager": sub is not None
        and bool(SECRETS.match(sub))
        and _tag_conditioned(statement),
        "kms": resource == {"Ref": "KmsKeyArn"} and _kms_conditioned(statement),
        "ses": resource == {"Ref": "SesIdentityArn"},
        "sts": _member_role(resource),
        "logs": sub is not None and sub in _log_groups(template),
        "lambda": resource == {"Fn::GetAtt": ["FleetFunction", "Arn"]},
        # The app stacks of the fleet's account and region: read only (the key clean-up asks
        # CloudFormation whether a stack is deleting its resource).
        "cloudformation": sub == APP_STACKS
        and set(alternatives(statement.get("Action", [])))
        == {"cloudformation:DescribeStackResources"},
        "sqs": resource == {"Fn::GetAtt": ["FleetDeadLetterQueue", "Arn"]},
        "events": sub == DEFAULT_BUS,
    }
    return next((service for service, scoped in scopes.items() if scoped), None)


def _statement_problems(
    name: str, statement: dict[str, Any], template: Template, lines: Sequence[str]
) -> Problems:
    actions = [str(a) for a in alternatives(statement.get("Action", []))]
    resources = alternatives(statement.get("Resource", []))
    # Never "*" for IAM or Secrets Manager, whatever the comment says.
    problems = [
        f"{name}: {action} on '*'"
        for action in actions
        if action.split(":")[0] in {"iam", "secretsmanager"} and "*" in resources
    ]
    if is_justified(lines, statement):
        return problems
    problems += [f"{name}: uses {key}" for key in ("NotResource", "NotAction") if key in statement]
    problems += [f"{name}: action wildcard {a!r}" for a in actions if "*" in a]
    for resource in resources:
        service = _scope(resource, statement, template)
        if service is None:
            problems.append(f"{name}: Resource {resource!r} is not scoped to the fleet")
            continue
        problems += [
            f"{name}: {action} on a {service} resource"
            for action in actions
            if action.split(":")[0] != service
        ]
    return problems


def fleet_policy_problems(template: Template, lines: Sequence[str]) -> Problems:
    """Unscoped, unjustified permissions of the identity policies of ``template``."""
    problems: Problems = []
    for owner, statement in _statements(template):
        if statement.get("Effect") != "Allow":
            continue
        name = f"{owner} statement {statement.get('Sid', '?')}"
        problems += _statement_problems(name, statement, template, lines)
    for name, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        if "ManagedPolicyArns" in properties or (
            resource["Type"] == "AWS::Serverless::Function" and "Policies" in properties
        ):
            problems.append(f"{name}: managed or SAM policies cannot be checked offline")
    return problems


# --- the fleet function -------------------------------------------------------------------------


def _function(template: Template) -> dict[str, Any]:
    (function,) = _of_type(template, "AWS::Serverless::Function").values()
    return {**template.get("Globals", {}).get("Function", {}), **function["Properties"]}


def function_problems(template: Template) -> Problems:
    merged = _function(template)
    expected = {
        "Runtime": "python3.13",
        "Architectures": ["arm64"],
        "Tracing": "Active",
        "Handler": "rotation_handler.app.lambda_handler",
        "CodeUri": "../src/",
        "ReservedConcurrentExecutions": {
            "Fn::If": ["ReservesConcurrency", {"Ref": "FleetConcurrency"}, {"Ref": "AWS::NoValue"}]
        },
        "DeadLetterQueue": {
            "Type": "SQS",
            "TargetArn": {"Fn::GetAtt": ["FleetDeadLetterQueue", "Arn"]},
        },
    }
    problems = [
        f"function {key} is {merged.get(key)!r}, expected {value!r}"
        for key, value in expected.items()
        if merged.get(key) != value
    ]
    variables = merged["Environment"]["Variables"]
    problems += [
        f"function environment lacks {n}" for n in sorted(FLEET_VARIABLES - set(variables))
    ]
    problems += [
        f"fleet mode with {name}"
        for name in ("SECRET_ARN", "SMTP_IAM_USER_NAME")
        if name in variables
    ]
    if variables.get("FLEET_TAG_KEY") != FLEET_TAG_KEY:
        problems.append(f"FLEET_TAG_KEY is {variables.get('FLEET_TAG_KEY')!r}")
    concurrency = template["Parameters"]["FleetConcurrency"]
    if concurrency.get("Default") != MIN_CONCURRENCY or concurrency.get("MinValue") != 0:
        problems.append(f"FleetConcurrency {concurrency!r}: default 10, 0 allowed")
    # 1-9 refused by a rule: 0 reserves nothing, below 10 a rotation function is throttled.
    rule = template.get("Rules", {}).get("NoReservationOrAtLeastTen", {})
    refused = {
        "Fn::Not": [{"Fn::Contains": [[str(n) for n in range(1, 10)], {"Ref": "FleetConcurrency"}]}]
    }
    if [a.get("Assert") for a in rule.get("Assertions", [])] != [
        refused
    ] or "RuleCondition" in rule:
        problems.append("FleetConcurrency: no rule refusing 1-9")
    return problems


def permission_problems(template: Template) -> Problems:
    permissions = _of_type(template, "AWS::Lambda::Permission")
    problems = [
        f"{name}: {key} is {permission['Properties'].get(key)!r}"
        for name, permission in permissions.items()
        for key, value in (("Principal", "secretsmanager.amazonaws.com"), ("SourceAccount", None))
        if (value is None and key not in permission["Properties"])
        or (value is not None and permission["Properties"].get(key) != value)
    ]
    own = [p for p in permissions.values() if "Condition" not in p]
    if [p["Properties"].get("SourceAccount") for p in own] != [{"Ref": "AWS::AccountId"}]:
        problems.append("no unconditional permission for this account's Secrets Manager")
    return problems


def _slot(index: int) -> dict[str, Any]:
    """What slot ``index`` (0-based) of the padded MemberAccountIds reads."""
    padded = {"Fn::Join": ["", [{"Ref": "MemberAccountIds"}, "," * SLOTS]]}
    return {"Fn::Select": [index, {"Fn::Split": [",", padded]}]}


def slot_problems(template: Template) -> Problems:
    """Slot i: its condition, its invoke permission and its role ARN read the same account."""
    problems: Problems = []
    conditions = template["Conditions"]
    permissions = _of_type(template, "AWS::Lambda::Permission")
    (assume,) = [s for _, s in _statements(template) if s.get("Sid") == "AssumeTheMemberRoles"]
    entries = assume["Resource"]
    if len(entries) != SLOTS:
        problems.append(f"{len(entries)} role ARNs for {SLOTS} slots")
    for index in range(SLOTS):
        condition, slot = f"HasMember{index + 1}", _slot(index)
        expected = {
            "Fn::And": [{"Condition": "CrossAccount"}, {"Fn::Not": [{"Fn::Equals": [slot, ""]}]}]
        }
        if conditions.get(condition) != expected:
            problems.append(f"{condition} does not test slot {index}")
        permission = permissions.get(f"MemberInvokePermission{index + 1}", {})
        if permission.get("Condition") != condition or (
            permission["Properties"]["SourceAccount"] != slot
        ):
            problems.append(f"MemberInvokePermission{index + 1} is not slot {index}")
        entry = entries[index] if index < len(entries) else {}
        role = {"Fn::Sub": [MEMBER_ROLE, {"Id": slot}]}
        if entry != {"Fn::If": [condition, role, {"Ref": "AWS::NoValue"}]}:
            problems.append(f"role ARN {index} is not slot {index}")
    return problems


# --- the real templates -------------------------------------------------------------------------


@pytest.fixture
def fleet() -> tuple[Template, list[str]]:
    return load("template.yaml")


@pytest.fixture
def app() -> Template:
    return load("app.yaml")[0]


@pytest.fixture
def member() -> tuple[Template, list[str]]:
    return load("member-role.yaml")


@pytest.mark.parametrize("name", ["template.yaml", "app.yaml", "member-role.yaml"])
def test_every_fleet_permission_is_scoped_or_justified(name: str) -> None:
    # GIVEN a fleet template / WHEN its identity policies are checked
    template, lines = load(name)
    # THEN each statement is scoped to the fleet's users, tagged secrets, key, member roles or
    # log group, and tagging is limited to the function's own tag keys
    assert fleet_policy_problems(template, lines) == []
    assert tag_problems(template, binds=False) == []


def test_the_fleet_function_keeps_the_single_templates_hardening(
    fleet: tuple[Template, list[str]],
) -> None:
    template, _ = fleet
    assert function_problems(template) == []
    assert timeout_problems(template) == []
    assert permission_problems(template) == []
    assert template["Parameters"]["StoreSecretAccessKey"]["Default"] == "false"
    assert template["Outputs"]["FleetFunctionArn"]["Value"] == {
        "Fn::GetAtt": ["FleetFunction", "Arn"]
    }


def test_the_unscoped_statements_are_exactly_the_justified_ones(
    fleet: tuple[Template, list[str]], member: tuple[Template, list[str]]
) -> None:
    # GIVEN the fleet templates with their justification comments removed
    problems = []
    for template, lines in (fleet, member, load("app.yaml")):
        unjustified = [line.replace("justification:", "reason:") for line in lines]
        problems += fleet_policy_problems(template, unjustified)
    # THEN only X-Ray on "*" and the app user's SES send on "*" surface
    assert len(problems) == 2, problems
    assert any("SendActiveTracingSegments" in p and "'*'" in p for p in problems)
    assert any("SendMailOverSmtp" in p and "'*'" in p for p in problems)


def test_member_account_slots_line_up(fleet: tuple[Template, list[str]]) -> None:
    # GIVEN the ten member account slots / THEN each reads one account for all three uses
    template, _ = fleet
    assert slot_problems(template) == []
    # AND MemberAccountIds allows exactly as many accounts as there are slots
    pattern = template["Parameters"]["MemberAccountIds"]["AllowedPattern"]
    assert re.fullmatch(pattern, "")
    assert re.fullmatch(pattern, ",".join(["111111111111"] * SLOTS))
    assert not re.fullmatch(pattern, ",".join(["111111111111"] * (SLOTS + 1)))
    assert not re.fullmatch(pattern, "111111111111, 222222222222")


def test_the_member_role_trusts_only_the_fleet_functions_role(
    member: tuple[Template, list[str]],
) -> None:
    template, _ = member
    (role,) = _of_type(template, "AWS::IAM::Role").values()
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": {"Ref": "FleetRoleArn"}}
    assert trust["Action"] == "sts:AssumeRole"
    # AND its name is the one the fleet's CrossAccountRoleName example uses
    assert role["Properties"]["RoleName"] == {"Ref": "RoleName"}
    assert template["Parameters"]["RoleName"]["Default"] == "ses-smtp-rotation-member"


def test_an_app_is_tagged_for_the_fleet_and_cleans_up_its_keys(app: Template) -> None:
    # GIVEN one app's template
    (user_name, user), *_ = _of_type(app, "AWS::IAM::User").items()
    (secret_name, secret), *_ = _of_type(app, "AWS::SecretsManager::Secret").items()
    # THEN its user sits under the fleet's path and may only send mail
    assert user["Properties"]["Path"] == {"Ref": "UserPath"}
    (policy,) = user["Properties"]["Policies"]
    assert [s["Action"] for s in policy["PolicyDocument"]["Statement"]] == ["ses:SendRawEmail"]
    # AND its secret carries the fleet's tag and names only the user, by the user's own name
    assert {"Key": FLEET_TAG_KEY, "Value": {"Ref": "FleetName"}} in secret["Properties"]["Tags"]
    body = sub_string(secret["Properties"]["SecretString"])
    assert body is not None
    assert user["Properties"]["UserName"] == {"Fn::Sub": "${AWS::StackName}-ses-smtp"}
    assert json.loads(body) == {"iam_user_name": "${AWS::StackName}-ses-smtp"}
    # AND the user is bound to that secret by the stack (the fleet function never binds)
    binding = {"Key": BINDING_TAG, "Value": {"Ref": secret_name}}
    assert user["Properties"]["Tags"] == [binding]
    # AND the fleet function rotates it, at once on creation
    (schedule,) = _of_type(app, "AWS::SecretsManager::RotationSchedule").values()
    fleet_function = {"Ref": "FleetFunctionArn"}
    assert schedule["Properties"]["RotationLambdaARN"] == {
        "Fn::If": [
            "InFleetAccount",
            {"Fn::Select": [0, [fleet_function, {"Ref": "SmtpUserKeys"}]]},
            fleet_function,
        ]
    }
    assert schedule["Properties"]["RotateImmediatelyOnUpdate"] is True
    # AND deleting the stack deletes the user's keys before the user
    (keys,) = _of_type(app, "Custom::SmtpUserKeys").values()
    assert keys["DependsOn"] == user_name
    assert keys["Properties"] == {
        "ServiceToken": {"Ref": "FleetFunctionArn"},
        "ServiceTimeout": 600,
        "UserName": {"Ref": user_name},
        "SecretId": {"Ref": secret_name},
    }
    # AND its hourly sweep sends the sweep's event for its own secret
    (sweep,) = _of_type(app, "AWS::Scheduler::Schedule").values()
    assert sweep["Properties"]["ScheduleExpression"] == "rate(1 hour)"
    target = sweep["Properties"]["Target"]
    assert target["Arn"] == {"Ref": "FleetFunctionArn"}
    body = sub_string(target["Input"])
    assert body is not None
    assert json.loads(body.replace(f"${{{secret_name}}}", "arn")) == {
        "Action": "RetireOldKeys",
        "SecretId": "arn",
    }


def test_the_three_templates_agree_on_the_fleets_names(
    fleet: tuple[Template, list[str]], app: Template, member: tuple[Template, list[str]]
) -> None:
    templates = [fleet[0], app, member[0]]
    # THEN FleetName and UserPath accept the same values everywhere, with the same defaults
    for name in ("FleetName", "UserPath"):
        shapes = {
            (t["Parameters"][name]["AllowedPattern"], t["Parameters"][name]["Default"])
            for t in templates
        }
        assert len(shapes) == 1, (name, shapes)
    pattern = fleet[0]["Parameters"]["UserPath"]["AllowedPattern"]
    assert re.fullmatch(pattern, "/ses-smtp/")
    assert re.fullmatch(pattern, "/apps/ses-smtp/")
    for refused in ("/", "ses-smtp/", "/ses-smtp", "/a b/"):
        assert not re.fullmatch(pattern, refused), refused
    # AND the tag key the function reads is the one the policies test and the app writes
    for template in (fleet[0], member[0]):
        assert _tag_conditioned(_by_sid(template, "RotateTheFleetsSecrets"))
    assert _function(fleet[0])["Environment"]["Variables"]["FLEET_TAG_KEY"] == FLEET_TAG_KEY


def test_the_function_writes_only_the_tag_keys_the_fleet_allows() -> None:
    # GIVEN the rotation function's sources / THEN every tag key they write is allowed here too
    sources = [*(ROOT / "src" / "rotation_handler").glob("*.py")]
    sources.append(ROOT / "src" / "ses_smtp_rotator" / "contract.py")
    written = {
        match
        for path in sources
        for match in re.findall(r"ses-smtp-rotation:[\w-]+", path.read_text(encoding="utf-8"))
    }
    assert written
    assert written - {FLEET_TAG_KEY, notices.FAILING_TAG} <= ALLOWED_TAG_KEYS


# --- the single template: SAR metadata and ExtraSesRegions --------------------------------------


@pytest.fixture
def single() -> Template:
    return load_template(TEMPLATE.read_text(encoding="utf-8"))


def test_sar_metadata_lets_sam_publish_work(single: Template) -> None:
    # GIVEN the application's Serverless Application Repository metadata
    sar = single["Metadata"]["AWS::ServerlessRepo::Application"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    # THEN its version is the package's, its license the package's, and its files exist
    assert sar["SemanticVersion"] == project["version"]
    assert sar["SpdxLicenseId"] == project["license"]
    for key in ("LicenseUrl", "ReadmeUrl"):
        assert (ROOT / sar[key]).is_file(), key
    # AND every field is one the repository accepts
    assert SAR_NAME.fullmatch(sar["Name"])
    assert SAR_AUTHOR.fullmatch(sar["Author"])
    assert 0 < len(sar["Description"]) <= SAR_DESCRIPTION_MAX
    assert 0 < len(sar["Labels"]) <= SAR_LABELS_MAX
    assert all(SAR_LABEL.fullmatch(label) for label in sar["Labels"])


@pytest.mark.parametrize(
    ("value", "allowed"),
    [
        pytest.param("", True, id="none"),
        pytest.param("us-east-1", True, id="one"),
        pytest.param("us-east-1,eu-central-1,ap-southeast-2", True, id="three"),
        pytest.param("us-gov-west-1", True, id="govcloud"),
        pytest.param("us-east-1, eu-west-1", False, id="space"),
        pytest.param("us-east-1,", False, id="trailing-comma"),
        pytest.param("US-EAST-1", False, id="upper-case"),
        pytest.param("email-smtp.us-east-1.amazonaws.com", False, id="host-name"),
    ],
)
def test_extra_ses_regions_pattern(single: Template, value: str, *, allowed: bool) -> None:
    # GIVEN both templates' ExtraSesRegions / THEN they accept a comma list of regions only
    for template in (single, load("template.yaml")[0]):
        pattern = template["Parameters"]["ExtraSesRegions"]["AllowedPattern"]
        assert bool(re.fullmatch(pattern, value)) is allowed
        variables = _function(template)["Environment"]["Variables"]
        assert variables["EXTRA_SES_REGIONS"] == {"Ref": "ExtraSesRegions"}


# --- each check can fail --------------------------------------------------------------------------


def _by_sid(template: Template, sid: str) -> dict[str, Any]:
    (statement,) = [s for _, s in _statements(template) if s.get("Sid") == sid]
    return statement


def _any_user(template: Template) -> None:
    _by_sid(template, "RotateTheFleetUsersAccessKeys")["Resource"] = {
        "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:user/*"
    }


def _untagged_secrets(template: Template) -> None:
    del _by_sid(template, "RotateTheFleetsSecrets")["Condition"]


def _another_fleets_secrets(template: Template) -> None:
    condition = _by_sid(template, "RotateTheFleetsSecrets")["Condition"]["StringEquals"]
    condition[TAG_CONDITION] = "*"


def _justified_star_write(template: Template) -> None:
    _by_sid(template, "SendActiveTracingSegments")["Action"].append("iam:CreateAccessKey")


def _secret_action_on_users(template: Template) -> None:
    _by_sid(template, "RotateTheFleetUsersAccessKeys")["Action"].append("secretsmanager:*")


def _kms_without_context(template: Template) -> None:
    statement = _by_sid(template, "UseTheSecretsKeyThroughSecretsManager")
    del statement["Condition"]["StringLike"]["kms:EncryptionContext:SecretARN"]


def _any_role(template: Template) -> None:
    _by_sid(template, "AssumeTheMemberRoles")["Resource"].append(
        {"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/*"}
    )


def _extra_tag_key(template: Template) -> None:
    statement = _by_sid(template, "TagTheFleetUsersWithRotationRecords")
    statement["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"].append("team")


def _policy(template: Template, lines: Sequence[str]) -> Problems:
    return fleet_policy_problems(template, lines) + tag_problems(template, binds=False)


def _functions(template: Template, _lines: Sequence[str]) -> Problems:
    return function_problems(template) + permission_problems(template) + slot_problems(template)


def _bound_to_one_secret(template: Template) -> None:
    (function,) = _of_type(template, "AWS::Serverless::Function").values()
    function["Properties"]["Environment"]["Variables"]["SECRET_ARN"] = {"Ref": "X"}


def _low_concurrency(template: Template) -> None:
    template["Parameters"]["FleetConcurrency"]["Default"] = 5


def _unreserved(template: Template) -> None:
    (function,) = _of_type(template, "AWS::Serverless::Function").values()
    del function["Properties"]["ReservedConcurrentExecutions"]


def _reserves_one(template: Template) -> None:
    del template["Rules"]["NoReservationOrAtLeastTen"]


def _no_dead_letter_queue(template: Template) -> None:
    (function,) = _of_type(template, "AWS::Serverless::Function").values()
    del function["Properties"]["DeadLetterQueue"]


def _other_tag_key(template: Template) -> None:
    (function,) = _of_type(template, "AWS::Serverless::Function").values()
    function["Properties"]["Environment"]["Variables"]["FLEET_TAG_KEY"] = "fleet"


def _swapped_slot(template: Template) -> None:
    permission = template["Resources"]["MemberInvokePermission3"]["Properties"]
    permission["SourceAccount"] = _slot(4)


def _any_account(template: Template) -> None:
    del template["Resources"]["FleetInvokePermission"]["Properties"]["SourceAccount"]


@pytest.mark.parametrize(
    ("mutate", "check", "expected"),
    [
        pytest.param(_any_user, _policy, "user/*", id="any-user"),
        pytest.param(_untagged_secrets, _policy, "secret:*", id="untagged-secrets"),
        pytest.param(_another_fleets_secrets, _policy, "secret:*", id="any-fleet"),
        pytest.param(_justified_star_write, _policy, "iam:CreateAccessKey on '*'", id="star"),
        pytest.param(_secret_action_on_users, _policy, "secretsmanager:*", id="wrong-service"),
        pytest.param(_kms_without_context, _policy, "KmsKeyArn", id="kms-context"),
        pytest.param(_any_role, _policy, "role/*", id="any-role"),
        pytest.param(_extra_tag_key, _policy, "'team'", id="tag-key"),
        pytest.param(_bound_to_one_secret, _functions, "SECRET_ARN", id="bound"),
        pytest.param(_low_concurrency, _functions, "FleetConcurrency", id="concurrency"),
        pytest.param(_unreserved, _functions, "ReservedConcurrentExecutions", id="unreserved"),
        pytest.param(_reserves_one, _functions, "refusing 1-9", id="concurrency-rule"),
        pytest.param(_no_dead_letter_queue, _functions, "DeadLetterQueue", id="no-dlq"),
        pytest.param(_other_tag_key, _functions, "FLEET_TAG_KEY", id="tag-key-env"),
        pytest.param(_swapped_slot, _functions, "MemberInvokePermission3", id="slot"),
        pytest.param(_any_account, _functions, "SourceAccount", id="source-account"),
    ],
)
def test_checker_flags_a_broken_fleet_template(
    fleet: tuple[Template, list[str]],
    mutate: Callable[[Template], None],
    check: Callable[[Template, Sequence[str]], Problems],
    expected: str,
) -> None:
    # GIVEN a copy of the fleet template with one rule broken
    template, lines = fleet
    broken = copy.deepcopy(template)
    mutate(broken)
    # WHEN the checks run on it / THEN the broken rule is reported, the original still passes
    problems = check(broken, lines)
    assert any(expected in problem for problem in problems), problems
    assert check(template, lines) == []


def _default_value(template: Template, value: object) -> str:
    """What a variable holds on a deployment with every parameter at its default."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return str(template["Parameters"][value["Ref"]].get("Default", ""))
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        return _default_value(template, value["Fn::If"][2])  # every option is off by default
    assert isinstance(value, str | int), value
    return str(value)


def test_the_function_accepts_the_fleets_default_environment(
    fleet: tuple[Template, list[str]],
) -> None:
    # GIVEN the environment a fleet deployed with the defaults gives its function
    template, _ = fleet
    variables = _function(template)["Environment"]["Variables"]
    environ = {name: _default_value(template, value) for name, value in variables.items()}
    assert environ["FLEET_USER_PATH"] == "/ses-smtp/"
    assert environ["FLEET_TAG_VALUE"] == "default"
    assert environ["CROSS_ACCOUNT_ROLE_NAME"] == ""
    # WHEN the function reads it / THEN it starts (a bad value would fail every cold start)
    Settings.from_env({**environ, "AWS_REGION": "eu-west-1"})


def _actions_called(service: str) -> set[str]:
    """``service:Operation`` of every call of ``service``'s client in the function's sources."""
    client: Any = boto3.client(service, region_name="us-east-1")  # type: ignore[call-overload]
    mapping: dict[str, str] = client.meta.method_to_api_mapping
    sources = "\n".join(
        path.read_text(encoding="utf-8")
        for path in (ROOT / "src" / "rotation_handler").glob("*.py")
    )
    return {f"{service}:{mapping[m]}" for m in re.findall(r"\.(\w+)\(", sources) if m in mapping}


@pytest.mark.parametrize("name", ["template.yaml", "member-role.yaml"])
def test_every_iam_and_secrets_manager_call_of_the_function_is_allowed(name: str) -> None:
    # GIVEN the IAM and Secrets Manager calls the function's code makes
    called = _actions_called("iam") | _actions_called("secretsmanager")
    assert {"iam:CreateAccessKey", "secretsmanager:PutSecretValue"} <= called
    # WHEN the role that makes them is read / THEN it allows each one
    template, _ = load(name)
    allowed = {
        str(action)
        for owner, statement in _statements(template)
        if template["Resources"][owner]["Type"] == "AWS::IAM::Role"
        and statement.get("Effect") == "Allow"
        for action in alternatives(statement.get("Action", []))
    }
    # RotateSecret: only a single-secret function's Custom::SmtpUserChange calls it; a fleet
    # function refuses that request first (test_user_change.py), so the fleet's roles lack it.
    single_only = {"secretsmanager:RotateSecret"}
    assert called - allowed - single_only == set()


def test_the_fleets_overdue_alarm_watches_the_metric_the_sweeps_emit(
    fleet: tuple[Template, list[str]], single: Template
) -> None:
    # GIVEN the fleet's overdue alarm and the single template's (which test_overdue_metric.py
    # ties to what the sweep emits)
    alarm = fleet[0]["Resources"]["FleetRotationOverdueAlarm"]["Properties"]
    reference = single["Resources"]["RotationOverdueAlarm"]["Properties"]

    # THEN both read the same metric, in hours, against their RotationOverdueHours
    def unlabelled(metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in m.items() if k != "Label"} for m in metrics]

    assert unlabelled(alarm["Metrics"]) == unlabelled(reference["Metrics"])
    assert alarm["Threshold"] == {"Ref": "RotationOverdueHours"}


def test_the_function_answers_cloudformation_only_on_aws_and_reads_no_switch() -> None:
    # GIVEN the function's sources / WHEN the places that read the environment are collected
    sources = sorted((ROOT / "src" / "rotation_handler").glob("*.py"))
    readers = {path.name for path in sources if "environ" in path.read_text(encoding="utf-8")}
    # THEN only the settings (and the cold start that hands them os.environ) read it: no switch
    # lets a deployed function answer on 127.0.0.1, which in Lambda is the runtime API
    assert readers == {"settings.py", "app.py"}
    app_text = (ROOT / "src" / "rotation_handler" / "app.py").read_text(encoding="utf-8")
    assert app_text.count("os.environ") == 1
    # AND the function's own rule refuses loopback
    assert not cloudformation.aws_answer_url("http://127.0.0.1:8080/answer")
