"""tools.policy_check on what templates hold besides inline documents: SAM policy templates and
Lambda permissions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tools import policy_check

if TYPE_CHECKING:
    from pathlib import Path

SAM_TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Queue: {Type: AWS::SQS::Queue}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - AWSLambdaBasicExecutionRole
        - {NAME: {QueueName: !GetAtt Queue.QueueName}}
"""
DEFINITIONS = {
    "SQSPollerPolicy": {
        "Definition": {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage"],
                    "Resource": {
                        "Fn::Sub": [
                            "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${q}",
                            {"q": {"Ref": "QueueName"}},
                        ]
                    },
                }
            ]
        }
    },
    "BadPolicy": {
        "Definition": {"Statement": [{"Effect": "Allow", "Action": "sqs:Nope", "Resource": "*"}]}
    },
}


@pytest.mark.parametrize(
    ("name", "definitions", "expected"),
    [
        pytest.param("SQSPollerPolicy", DEFINITIONS, "", id="resolved-and-right"),
        pytest.param("BadPolicy", DEFINITIONS, "UNKNOWN_ACTION", id="resolved-and-wrong"),
        pytest.param("SQSPollerPolicy", None, "not resolvable", id="no-sam-translator"),
    ],
)
def test_sam_policy_templates_are_resolved_or_fail(  # noqa: PLR0913, PLR0917 - fixtures
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    definitions: dict[str, Any] | None,
    expected: str,
) -> None:
    # GIVEN a SAM function with a managed policy and a policy template
    path = tmp_path / "t.yaml"
    path.write_text(SAM_TEMPLATE.replace("NAME", name), encoding="utf-8")
    monkeypatch.setattr(policy_check, "sam_policy_templates", lambda: definitions)
    # WHEN it is checked / THEN the template's definition is checked, or its absence fails
    assert policy_check.main([str(path)]) == (1 if expected else 0)
    assert expected in capsys.readouterr().err


def test_sam_translators_own_definitions_are_found_when_installed() -> None:
    definitions = policy_check.sam_policy_templates()
    if definitions is None:
        pytest.skip("no aws-sam-translator here nor in .venv-sam (make sam-env)")
    assert "SQSPollerPolicy" in definitions


PERMISSION = """\
Resources:
  Fn: {Type: AWS::Lambda::Function}
  Allow:
    Type: AWS::Lambda::Permission
    Properties:
      FunctionName: !GetAtt Fn.Arn
      Action: ACTION
      Principal: secretsmanager.amazonaws.com
      SourceAccount: !Ref AWS::AccountId
"""


@pytest.mark.parametrize(
    ("action", "code"),
    [
        pytest.param("lambda:InvokeFunction", 0, id="right"),
        pytest.param("lambda:InvokeFunctions", 1, id="unknown-action"),
    ],
)
def test_a_lambda_permission_is_checked_as_the_statement_it_adds(
    tmp_path: Path, action: str, code: int
) -> None:
    # GIVEN a template granting Secrets Manager of this account the right to invoke a function
    path = tmp_path / "t.yaml"
    path.write_text(PERMISSION.replace("ACTION", action), encoding="utf-8")
    # WHEN it is checked / THEN the permission is read as a policy, and a wrong action fails it
    policies, problems = policy_check.template_policies(path)
    assert problems == []
    assert len(policies) == 2  # conditions true and false
    assert policy_check.main([str(path)]) == code
