from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rotation_handler.keys import AccessKey, Intent, token_digest

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TOKEN = "3f1c9a2e-6d0b-4b9f-9a57-1f2d3c4b5a69"


def key(key_id: str, created: datetime) -> AccessKey:
    return AccessKey(access_key_id=key_id, active=True, created=created)


def test_intent_round_trips_through_its_tag_value() -> None:
    intent = Intent(
        token_digest=token_digest(TOKEN), started_at=T0, existing=frozenset({"AKIAB", "AKIAA"})
    )
    value = intent.encode()
    assert value == f"v1 {token_digest(TOKEN)} {int(T0.timestamp())} AKIAA AKIAB"
    assert "," not in value  # IAM tag values allow no commas
    assert Intent.decode(value) == intent


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("v2 abc 1 AKIA", id="other-version"),
        pytest.param("v1 abc yesterday", id="bad-time"),
        pytest.param("owner=team-mail", id="someone-elses-tag"),
    ],
)
def test_foreign_tag_values_are_not_intents(value: str) -> None:
    assert Intent.decode(value) is None


@pytest.mark.parametrize(
    ("candidate", "token", "ours"),
    [
        pytest.param(
            key("AKIANEW", T0 + timedelta(seconds=2)), TOKEN, True, id="created-by-attempt"
        ),
        pytest.param(key("AKIAOLD", T0 + timedelta(seconds=2)), TOKEN, False, id="existed-before"),
        pytest.param(key("AKIANEW", T0 - timedelta(hours=1)), TOKEN, False, id="older-than-intent"),
        pytest.param(key("AKIANEW", T0 + timedelta(hours=1)), TOKEN, False, id="after-the-attempt"),
        pytest.param(
            key("AKIANEW", T0 + timedelta(seconds=2)), "another-token", False, id="other-rotation"
        ),
    ],
)
def test_intent_vouches_only_for_keys_of_its_own_attempt(
    candidate: AccessKey, token: str, *, ours: bool
) -> None:
    intent = Intent(
        token_digest=token_digest(TOKEN), started_at=T0, existing=frozenset({"AKIAOLD"})
    )
    assert intent.created(candidate, token=token) is ours


def test_token_digest_is_short_and_stable() -> None:
    assert token_digest(TOKEN) == token_digest(TOKEN)
    assert len(token_digest(TOKEN)) == 12
    assert TOKEN not in token_digest(TOKEN)
