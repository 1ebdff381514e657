"""The pure parts of ``rotate``: masking key ids, where the function's log lives."""

from __future__ import annotations

import pytest

from rotation_handler.app import first_line
from ses_smtp_rotator import _rotate


def test_every_key_id_in_a_message_is_masked() -> None:
    text = "keys AKIAIOSFODNN7EXAMPLE and ASIAIOSFODNN7EXAMPL2 of user bob (AKIA alone stays)"
    assert _rotate.masked(text) == "keys AKIA…MPLE and ASIA…MPL2 of user bob (AKIA alone stays)"


@pytest.mark.parametrize(
    ("arn", "group", "region"),
    [
        (
            "arn:aws:lambda:eu-west-1:123456789012:function:stack-ses-smtp-rotation",
            "/aws/lambda/stack-ses-smtp-rotation",
            "eu-west-1",
        ),
        (
            "arn:aws:lambda:eu-west-1:123456789012:function:stack-ses-smtp-rotation:live",
            "/aws/lambda/stack-ses-smtp-rotation",
            "eu-west-1",
        ),
        ("not-an-arn", "/aws/lambda/not-an-arn", None),
    ],
)
def test_the_log_group_and_region_come_from_the_function_arn(
    arn: str, group: str, region: str | None
) -> None:
    assert _rotate._log_group(arn) == group
    assert _rotate._region_of(arn) == region


def test_first_line_of_an_error() -> None:
    assert first_line(ValueError("the key is gone\nsecond line")) == "the key is gone"
    assert first_line(TimeoutError()) == "TimeoutError"
