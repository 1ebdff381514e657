"""Which account a secret is in, and the AssumeRole session name (pure functions)."""

from __future__ import annotations

import pytest

from rotation_handler.accounts import DEFAULT_SESSION_NAME, account_of, session_name


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        pytest.param(
            "arn:aws:secretsmanager:eu-west-1:111122223333:secret:smtp-AbCdEf",
            ("aws", "111122223333"),
            id="secret",
        ),
        pytest.param(
            "arn:aws-cn:secretsmanager:cn-north-1:111122223333:secret:smtp-AbCdEf",
            ("aws-cn", "111122223333"),
            id="china-partition",
        ),
        pytest.param(
            "arn:aws:lambda:us-east-1:123456789012:function:rotate:live",
            ("aws", "123456789012"),
            id="function-alias",
        ),
        pytest.param("ses-smtp-rotator", None, id="name"),
        pytest.param("arn:aws:secretsmanager:eu-west-1:1234:secret:x", None, id="short-account"),
        pytest.param("", None, id="empty"),
    ],
)
def test_account_of(arn: str, expected: tuple[str, str] | None) -> None:
    assert account_of(arn) == expected


@pytest.mark.parametrize(
    ("function_name", "expected"),
    [
        pytest.param("ses-smtp-fleet", "ses-smtp-fleet", id="function-name"),
        pytest.param("a" * 80, "a" * 64, id="cut-to-64"),
        pytest.param("fn with spaces", "fn-with-spaces", id="bad-characters"),
        pytest.param(None, DEFAULT_SESSION_NAME, id="none"),
        pytest.param("x", DEFAULT_SESSION_NAME, id="too-short"),
    ],
)
def test_session_name(function_name: str | None, expected: str) -> None:
    assert session_name(function_name) == expected
