from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rotation_handler.records import AccessKey, Intent, token_digest

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
END = T0 + timedelta(seconds=60)
TOKEN = "3f1c9a2e-6d0b-4b9f-9a57-1f2d3c4b5a69"
OTHER = "9b0e7d6c-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:mail-AbCdEf"
OTHER_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:other-AbCdEf"


def key(key_id: str, created: datetime) -> AccessKey:
    return AccessKey(access_key_id=key_id, active=True, created=created)


def test_intent_round_trips_through_its_tag_value() -> None:
    intent = Intent(
        secret_digest=token_digest(SECRET),
        token_digest=token_digest(TOKEN),
        started_at=T0,
        ends_by=END,
        existing=frozenset({"AKIAB", "AKIAA"}),
        live="AKIAA",
    )
    value = intent.encode()
    stamps = f"{int(T0.timestamp())} {int(END.timestamp())}"
    assert value == f"v4 {token_digest(SECRET)} {token_digest(TOKEN)} {stamps} AKIAA AKIAA AKIAB"
    assert "," not in value  # IAM tag values allow no commas
    assert Intent.decode(value) == intent


def test_an_earlier_v3_intent_still_vouches_but_names_no_live_key() -> None:
    stamps = f"{int(T0.timestamp())} {int(END.timestamp())}"
    decoded = Intent.decode(f"v3 {token_digest(SECRET)} {token_digest(TOKEN)} {stamps} AKIAA")
    assert decoded is not None
    assert (decoded.existing, decoded.live) == (frozenset({"AKIAA"}), None)


@pytest.mark.parametrize(
    ("key_id", "current_version", "secret", "shown"),
    [
        pytest.param("AKIAA", TOKEN, SECRET, True, id="the-live-key-before-the-current-rotation"),
        pytest.param("AKIAB", TOKEN, SECRET, False, id="another-key"),
        pytest.param("AKIAA", "another-token", SECRET, False, id="rotation-not-current"),
        pytest.param("AKIAA", None, SECRET, False, id="no-current-version"),
        pytest.param("AKIAA", TOKEN, "arn:another-secret", False, id="another-secrets-record"),
    ],
)
def test_the_record_shows_the_old_key_only_for_the_current_rotation_of_its_secret(
    key_id: str, current_version: str | None, secret: str, *, shown: bool
) -> None:
    intent = Intent(
        secret_digest=token_digest(SECRET),
        token_digest=token_digest(TOKEN),
        started_at=T0,
        ends_by=END,
        existing=frozenset({"AKIAA"}),
        live="AKIAA",
    )
    found = intent.held_live(key_id, current_version=current_version, secret_arn=secret)
    assert found is shown


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("closed", id="closed"),
        pytest.param("v1 abc 1 AKIA", id="earlier-format"),
        pytest.param("v2 abc 1 2 AKIA", id="v2-names-no-secret"),
        pytest.param("v5 abc def 1 2 - AKIA", id="later-format"),
        pytest.param("v3 abc def yesterday 2", id="bad-start"),
        pytest.param("v3 abc def 1", id="no-end"),
        pytest.param("owner=team-mail", id="someone-elses-tag"),
    ],
)
def test_foreign_tag_values_are_not_intents(value: str) -> None:
    assert Intent.decode(value) is None


NEW = key("AKIANEW", T0 + timedelta(seconds=2))


@pytest.mark.parametrize(
    ("keys", "token", "staged", "ours"),
    [
        pytest.param([NEW], TOKEN, [TOKEN], NEW, id="created-by-attempt"),
        pytest.param([key("AKIAOLD", T0 + timedelta(seconds=2))], TOKEN, [], None, id="existed"),
        pytest.param([key("AKIANEW", T0 - timedelta(hours=1))], TOKEN, [], None, id="older"),
        pytest.param([key("AKIANEW", END + timedelta(minutes=5))], TOKEN, [], None, id="after-run"),
        pytest.param([NEW], OTHER, [TOKEN, OTHER], None, id="other-rotation-still-labelled"),
        pytest.param([NEW], OTHER, [OTHER], NEW, id="other-rotation-cancelled"),
        pytest.param(
            [NEW, key("AKIAHAND", T0 + timedelta(seconds=9))], TOKEN, [TOKEN], None, id="two-new"
        ),
    ],
)
def test_intent_vouches_for_the_one_key_its_run_created(
    keys: list[AccessKey], token: str, staged: list[str], ours: AccessKey | None
) -> None:
    intent = Intent(
        secret_digest=token_digest(SECRET),
        token_digest=token_digest(TOKEN),
        started_at=T0,
        ends_by=END,
        existing=frozenset({"AKIAOLD"}),
    )
    assert intent.orphan(keys, token=token, staged=staged, secret_arn=SECRET) == ours


def test_an_intent_recorded_for_another_secret_vouches_for_nothing() -> None:
    # GIVEN an open intent that another secret's rotation recorded on the shared user
    intent = Intent(
        secret_digest=token_digest(OTHER_SECRET),
        token_digest=token_digest(TOKEN),
        started_at=T0,
        ends_by=END,
        existing=frozenset({"AKIAOLD"}),
    )
    # THEN the key its run made is never this secret's orphan, even for the same token
    assert intent.orphan([NEW], token=TOKEN, staged=[], secret_arn=SECRET) is None
    assert intent.orphan([NEW], token=TOKEN, staged=[], secret_arn=OTHER_SECRET) == NEW


def test_token_digest_is_short_and_stable_across_releases() -> None:
    # Tags outlive a deployment: a new release must compute the digest an old one recorded.
    assert token_digest(TOKEN) == "2a91b49580e7"  # sha256(token)[:12]
    assert token_digest(OTHER) != token_digest(TOKEN)
