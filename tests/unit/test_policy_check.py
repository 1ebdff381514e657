"""tools.policy_check: every policy of the templates and docs against AWS's policy language."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tools import cfn_resolve, policy_check

ROOT = Path(__file__).resolve().parents[2]
SECRET_ARN_CONDITION = "kms:EncryptionContext:SecretARN"
KEY = "arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _policy(statement: dict[str, Any]) -> policy_check.Policy:
    return policy_check.Policy("test", {"Version": "2012-10-17", "Statement": [statement]})


def _with_arnlike(text: str) -> str:
    """The template as it was before issue 24: ArnLike on the encryption context's SecretARN."""
    lines = text.splitlines(keepends=True)
    (index,) = [
        i for i, line in enumerate(lines) if f"{SECRET_ARN_CONDITION}: " in line and "#" not in line
    ]
    indent = len(lines[index]) - len(lines[index].lstrip())
    lines.insert(index, f"{' ' * (indent - 2)}ArnLike:\n")
    # The string operator it had, when that held only this key, goes with it.
    before = [i for i in range(index) if not lines[i].lstrip().startswith("#")][-1]
    if lines[before].strip().endswith("Like:"):
        del lines[before]
    return "".join(lines)


def test_the_repositorys_templates_and_docs_are_clean(capsys: pytest.CaptureFixture[str]) -> None:
    # WHEN the check runs over its default files / THEN it reads policies and finds nothing
    assert policy_check.main([]) == 0
    out = capsys.readouterr().out
    assert int(out.split()[0]) >= 20
    assert out.endswith(": 0 problems\n")


@pytest.mark.parametrize(
    "template",
    [
        pytest.param("fleet/template.yaml", id="fleet"),
        pytest.param("fleet/member-role.yaml", id="member-role"),
    ],
)
def test_it_fails_on_the_fleets_arnlike_of_before_issue_24(
    template: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a copy of the template with ArnLike on kms:EncryptionContext:SecretARN (a String key)
    copy = tmp_path / "template.yaml"
    copy.write_text(_with_arnlike((ROOT / template).read_text(encoding="utf-8")), encoding="utf-8")
    assert "ArnLike:\n" in copy.read_text(encoding="utf-8")
    # WHEN the check runs on it / THEN it fails, naming the type mismatch
    assert policy_check.main([str(copy)]) == 1
    assert "MISMATCHED_TYPE: Type mismatch: ArnLike requires a value of type Arn" in (
        capsys.readouterr().err
    )
    # AND the repository's own template passes
    assert policy_check.main([str(ROOT / template)]) == 0


@pytest.mark.parametrize(
    ("statement", "issue"),
    [
        pytest.param(
            {"Effect": "Allow", "Action": "secretsmanager:RotateEverything", "Resource": "*"},
            "UNKNOWN_ACTION",
            id="unknown-action",
        ),
        pytest.param(
            {"Effect": "Allow", "Action": "secretmanager:GetSecretValue", "Resource": "*"},
            "UNKNOWN_PREFIX",
            id="unknown-service",
        ),
        pytest.param(
            {
                "Effect": "Allow",
                "Action": "iam:ListAccessKeys",
                "Resource": "arn:aws:iam::111111111111:user/ses-smtp/*",
                "Condition": {"StringEquals": {"secretsmanager:SecretId": "x"}},
            },
            "UNKNOWN_CONDITION_FOR_ACTION",
            id="key-the-action-does-not-take",
        ),
        pytest.param(
            {
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": KEY,
                "Condition": {"ArnLike": {SECRET_ARN_CONDITION: "arn:aws:secretsmanager:*"}},
            },
            "MISMATCHED_TYPE",
            id="arn-operator-on-a-string-key",
        ),
        pytest.param(
            {
                "Effect": "Allow",
                "Action": "sns:Publish",
                "Resource": "*",
                "Principal": {"Service": "events.amazonaws.com"},
                "Condition": {"NumericEquals": {"aws:SourceArn": "1"}},
            },
            "MISMATCHED_TYPE",
            id="numeric-operator-on-an-arn-key",
        ),
        pytest.param(
            {
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": KEY,
                "Condition": {"StringLike": None},
            },
            "UNREADABLE",
            id="a-shape-parliament-cannot-read",
        ),
    ],
)
def test_each_kind_of_mistake_fails(statement: dict[str, Any], issue: str) -> None:
    # GIVEN a statement with one mistake / WHEN it is checked / THEN parliament's finding fails it
    assert any(f": {issue}:" in line for line in policy_check.findings(_policy(statement)))


def test_a_right_statement_has_no_finding() -> None:
    # GIVEN the KMS statement with a string operator on the String key / THEN no finding
    statement = {
        "Effect": "Allow",
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": KEY,
        "Condition": {
            "StringEquals": {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"},
            "StringLike": {SECRET_ARN_CONDITION: "arn:aws:secretsmanager:eu-west-1:111:secret:*"},
        },
    }
    assert policy_check.findings(_policy(statement)) == []


TEMPLATE = """\
Parameters:
  KmsKeyArn: {Type: String, Default: "", AllowedPattern: '^$|^arn:aws:kms:.+$'}
Conditions:
  HasKey: !Not [!Equals [!Ref KmsKeyArn, ""]]
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - {Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: sts:AssumeRole}
      Policies:
        - PolicyName: p
          PolicyDocument:
            Statement:
              - !If
                - HasKey
                - {Effect: Allow, Action: kms:Decrypt, Resource: !Ref KmsKeyArn}
                - Effect: Allow
                  Action: {ONLY_IF_FALSE}
                  Resource: !Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:user/x"
"""


@pytest.mark.parametrize(
    ("action", "code"),
    [
        pytest.param("iam:ListAccessKeys", 0, id="both-branches-right"),
        pytest.param("iam:ListAccessKeyz", 1, id="mistake-in-the-false-branch"),
    ],
)
def test_both_branches_of_an_if_are_checked(tmp_path: Path, action: str, code: int) -> None:
    # GIVEN a template whose second policy statement exists only when a condition is false
    path = tmp_path / "t.yaml"
    path.write_text(TEMPLATE.replace("{ONLY_IF_FALSE}", action), encoding="utf-8")
    # WHEN it is checked / THEN a mistake in that branch fails it, and the trust policy passes
    assert policy_check.main([str(path)]) == code


@pytest.mark.parametrize(
    ("block", "found"),
    [
        pytest.param({"Effect": "Allow", "Action": "sqs:Nope", "Resource": "*"}, 1, id="statement"),
        pytest.param(
            {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]},
            0,
            id="policy",
        ),
        pytest.param({"Action": "RetireOldKeys", "SecretId": "x"}, 0, id="not-a-policy"),
    ],
)
def test_docs_json_blocks_are_checked(tmp_path: Path, block: dict[str, Any], found: int) -> None:
    # GIVEN a Markdown file with a JSON block, and a block that is not JSON
    path = tmp_path / "doc.md"
    path.write_text(
        textwrap.dedent(f"""\
        # Doc
        ```json
        {json.dumps(block)}
        ```
        ```json
        {{"Action": <placeholder>}}
        ```
        """),
        encoding="utf-8",
    )
    # WHEN its policies are read and checked / THEN only policy blocks count, each finding fails
    policies = policy_check.doc_policies(path)
    problems = [p for policy in policies for p in policy_check.findings(policy)]
    assert len(problems) == found
    assert all(p.startswith(f"{path}:2: ") for p in problems)


def test_a_file_without_policies_fails(tmp_path: Path) -> None:
    # GIVEN a file with no policy / THEN the check fails: a check of nothing proves nothing
    path = tmp_path / "empty.md"
    path.write_text("# nothing\n", encoding="utf-8")
    assert policy_check.main([str(path)]) == 1


def test_an_intrinsic_function_it_cannot_resolve_is_a_failure(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "Resources:\n  R:\n    Type: AWS::IAM::Role\n    Properties:\n"
        "      X: !ImportValue other-stack-output\n",
        encoding="utf-8",
    )
    # WHEN it is checked / THEN it says what it could not resolve instead of skipping it
    with pytest.raises(cfn_resolve.ResolveError, match="ImportValue"):
        cfn_resolve.Resolver(cfn_resolve.load(path), conditions=True)({"Fn::ImportValue": "x"})
    _, problems = policy_check.template_policies(path)
    assert any("Fn::ImportValue" in problem for problem in problems)


def test_resource_star_is_left_to_the_house_tests() -> None:
    # GIVEN Resource "*" for an action that supports resource-level permissions (the created
    # user's ses:SendRawEmail without SesIdentityArn: justified in the template)
    statement = {"Effect": "Allow", "Action": "ses:SendRawEmail", "Resource": "*"}
    # THEN parliament's RESOURCE_STAR is not a failure here, and IGNORED says why
    assert policy_check.findings(_policy(statement)) == []
    assert "justification" in policy_check.IGNORED["RESOURCE_STAR"]
