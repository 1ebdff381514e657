"""The policies docs/cross-account.md shows are valid JSON, least privilege, and enough.

moto does not evaluate IAM permission policies, so the cross-account test cannot prove the
documented ones work; this checks what can be checked offline: each parses, no statement allows
every action or (outside a resource or key policy) every resource, and the member role may do
every IAM and Secrets Manager action the single-secret template gives the function.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Final

import pytest

ROOT: Final = Path(__file__).resolve().parents[2]
PAGE: Final = ROOT / "docs" / "cross-account.md"
TEMPLATE: Final = ROOT / "template.yaml"
ROTATION_ACTION: Final = re.compile(r"\b((?:iam|secretsmanager):[A-Z][A-Za-z]+)")


def documents() -> list[dict[str, Any]]:
    """Every ``json`` block of the page, parsed."""
    blocks = re.findall(
        r"^```json\n(.*?)^```", PAGE.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL
    )
    return [json.loads(block) for block in blocks]


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The statements of a policy, or the document itself when it is one statement."""
    found = document.get("Statement", [document])
    return found if isinstance(found, list) else [found]


def listed(value: object) -> list[str]:
    """A policy field that may be one string or a list, as a list."""
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value] if isinstance(value, list) else []


def test_every_policy_on_the_page_parses() -> None:
    # GIVEN the page / THEN it shows the trust, role, role's key statement, central, invoke,
    # resource and key policies
    assert len(documents()) == 7


@pytest.mark.parametrize("index", range(7))
def test_no_statement_allows_everything(index: int) -> None:
    for statement in statements(documents()[index]):
        actions = listed(statement.get("Action"))
        assert actions, statement
        assert not any(a == "*" or a.endswith(":*") for a in actions), statement
        # "*" as Resource is the policy's own resource in a resource or key policy (a Principal)
        if statement["Effect"] == "Allow" and "Principal" not in statement:
            assert "*" not in listed(statement.get("Resource")), statement


def test_the_member_role_may_do_what_the_function_does() -> None:
    # GIVEN what the single-secret template lets the function do on its user and secret
    needed = set(ROTATION_ACTION.findall(TEMPLATE.read_text(encoding="utf-8")))
    # Only a single-secret function starts a rotation when its stack changes the user
    # (Custom::SmtpUserChange); a fleet function refuses that request before any call.
    needed -= {"secretsmanager:RotateSecret"}
    assert "secretsmanager:PutSecretValue" in needed
    assert "iam:CreateAccessKey" in needed
    # WHEN the documented member role's permissions are read
    role = next(
        d
        for d in documents()
        if any(s.get("Sid") == "RotateTheFleetsSecrets" for s in statements(d))
    )
    allowed = {a for s in statements(role) if s["Effect"] == "Allow" for a in listed(s["Action"])}
    # THEN they cover every one of those actions
    assert needed <= allowed, needed - allowed
    # AND the tag writes are limited to the function's own tag keys
    (tagging,) = [s for s in statements(role) if "iam:TagUser" in listed(s["Action"])]
    keys = tagging["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"]
    assert all(key.startswith("ses-smtp-rotation:") for key in keys)
    assert tagging["Condition"]["Null"] == {"aws:TagKeys": "false"}


def test_the_trust_policy_lets_in_one_role_only() -> None:
    trust = next(
        d for d in documents() if "sts:AssumeRole" in json.dumps(d) and "Principal" in json.dumps(d)
    )
    (statement,) = statements(trust)
    principal = statement["Principal"]["AWS"]
    assert isinstance(principal, str)
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@-]+", principal)
