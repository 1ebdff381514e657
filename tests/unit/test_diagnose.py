"""diagnose() names each 535 cause it can tell, and never echoes the password or secret key."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta

import pytest

from ses_smtp_rotator.diagnose import Cause, Diagnosis, KeyInfo, diagnose, ses_regions
from ses_smtp_rotator.password import derive_legacy_v2_password, derive_smtp_password

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
OTHER_SECRET = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"
HOST = "email-smtp.us-east-1.amazonaws.com"
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LAST_YEAR = datetime(2025, 1, 1)  # noqa: DTZ001 - IAM/moto dates are naive UTC
TWO_MINUTES_AGO = datetime(2026, 1, 1, 11, 58)  # noqa: DTZ001 - same
OLD = KeyInfo(KEY_ID, "Active", LAST_YEAR)


def v2(secret: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return derive_legacy_v2_password(secret)


def run(**overrides: object) -> Diagnosis:
    arguments: dict[str, object] = {
        "host": HOST,
        "username": KEY_ID,
        "password": derive_smtp_password(SECRET, "us-east-1"),
        "secret_access_key": SECRET,
        "key_info": OLD,
        "now": NOW,
        **overrides,
    }
    diagnosis = diagnose(**arguments)  # type: ignore[arg-type]
    # Never a secret in the message, whatever the cause.
    assert SECRET not in diagnosis.message
    assert OTHER_SECRET not in diagnosis.message
    assert str(arguments["password"]) not in diagnosis.message
    return diagnosis


@pytest.mark.parametrize(
    ("overrides", "cause", "says"),
    [
        pytest.param(
            {"username": "ses-smtp-user"},
            Cause.USER_NAME_NOT_ACCESS_KEY_ID,
            "IAM user name",
            id="iam-user-name",
        ),
        pytest.param(
            {"username": "akiaiosfodnn7example"},
            Cause.USER_NAME_NOT_ACCESS_KEY_ID,
            "AKIA",
            id="lower-case-key-id",
        ),
        pytest.param(
            {"username": "ASIAIOSFODNN7EXAMPLE"},
            Cause.TEMPORARY_CREDENTIALS,
            "temporary",
            id="sts-key",
        ),
        pytest.param(
            {"password": SECRET}, Cause.RAW_SECRET_KEY, "is the raw secret", id="raw-secret-known"
        ),
        pytest.param(
            {"password": OTHER_SECRET, "secret_access_key": None},
            Cause.RAW_SECRET_KEY,
            "looks like",
            id="raw-secret-shape",
        ),
        pytest.param(
            {"password": v2(SECRET)},
            Cause.LEGACY_V2_PASSWORD,
            "version 2 SMTP password of this key",
            id="v2-of-this-key",
        ),
        pytest.param(
            {"password": v2(OTHER_SECRET)},
            Cause.LEGACY_V2_PASSWORD,
            "of another key",
            id="v2-of-another-key",
        ),
        pytest.param(
            {"password": v2(SECRET), "secret_access_key": None},
            Cause.LEGACY_V2_PASSWORD,
            "for us-east-1",
            id="v2-no-secret",
        ),
        pytest.param(
            {"password": derive_smtp_password(SECRET, "eu-west-1")},
            Cause.WRONG_REGION,
            "derived for eu-west-1, but the endpoint is in us-east-1",
            id="wrong-region",
        ),
        pytest.param(
            {"password": derive_smtp_password(SECRET, "us-gov-west-1")},
            Cause.WRONG_REGION,
            "us-gov-west-1",
            id="wrong-partition",
        ),
        pytest.param(
            {"password": derive_smtp_password(OTHER_SECRET, "us-east-1")},
            Cause.PASSWORD_NOT_FROM_KEY,
            "older key",
            id="other-key",
        ),
        pytest.param(
            {"key_info": KeyInfo(KEY_ID, "Inactive", LAST_YEAR)},
            Cause.KEY_INACTIVE,
            "is Inactive",
            id="inactive",
        ),
        pytest.param(
            {"key_info": KeyInfo(KEY_ID, "Active", NOW - timedelta(seconds=42))},
            Cause.KEY_TOO_NEW,
            "created 42 s ago",
            id="too-new-aware",
        ),
        pytest.param(
            {"key_info": KeyInfo(KEY_ID, "Active", TWO_MINUTES_AGO)},
            Cause.KEY_TOO_NEW,
            "created 120 s ago",
            id="too-new-naive-utc",
        ),
        pytest.param({}, Cause.UNKNOWN, "ses:SendRawEmail", id="nothing-wrong-visible"),
        pytest.param(
            {"secret_access_key": None, "key_info": None},
            Cause.UNKNOWN,
            "give the secret access key",
            id="unknown-without-secret",
        ),
    ],
)
def test_each_cause_is_named(overrides: dict[str, object], cause: Cause, says: str) -> None:
    # GIVEN credentials with one known defect, WHEN diagnosing
    diagnosis = run(**overrides)
    # THEN the cause is named and the message says which
    assert diagnosis.cause is cause
    assert says in diagnosis.message


def test_region_comes_from_the_argument_for_hosts_that_do_not_name_it() -> None:
    # GIVEN a test host and the region given explicitly
    diagnosis = run(
        host="localhost", region="us-east-1", password=derive_smtp_password(SECRET, "ap-south-1")
    )
    # THEN the region mismatch is still found
    assert diagnosis.cause is Cause.WRONG_REGION
    assert "ap-south-1" in diagnosis.message


def test_unknown_region_tests_every_region_before_blaming_the_key_age() -> None:
    # GIVEN a host that names no region (a VPC endpoint, a test host), no --region, a key created
    # two minutes ago, and a password derived for ap-south-1
    diagnosis = run(
        host="localhost",
        password=derive_smtp_password(SECRET, "ap-south-1"),
        key_info=KeyInfo(KEY_ID, "Active", TWO_MINUTES_AGO),
    )
    # THEN the region the password is for is named first (not key-too-new), with the age as the
    # other possibility
    assert diagnosis.cause is Cause.WRONG_REGION
    assert "derived for ap-south-1" in diagnosis.message
    assert "--region" in diagnosis.message
    assert "created 120 s ago" in diagnosis.message


def test_unknown_region_and_an_old_key_name_the_region_alone() -> None:
    diagnosis = run(host="localhost", password=derive_smtp_password(SECRET, "ap-south-1"))
    assert diagnosis.cause is Cause.WRONG_REGION
    assert "derived for ap-south-1" in diagnosis.message
    assert "created" not in diagnosis.message


def test_unknown_region_and_a_password_of_no_region_is_not_from_the_key() -> None:
    # GIVEN a host without a region and a password of another key, for a young key
    diagnosis = run(
        host="localhost",
        password=derive_smtp_password(OTHER_SECRET, "us-east-1"),
        key_info=KeyInfo(KEY_ID, "Active", TWO_MINUTES_AGO),
    )
    # THEN no region matched: the password is not this key's, whatever the key's age
    assert diagnosis.cause is Cause.PASSWORD_NOT_FROM_KEY
    assert "for any region" in diagnosis.message


def test_default_now_is_the_current_time() -> None:
    fresh = KeyInfo(KEY_ID, "Active", datetime.now(UTC))
    assert (
        diagnose(host=HOST, username=KEY_ID, password="x", key_info=fresh).cause
        is Cause.KEY_TOO_NEW
    )


def test_known_regions_span_partitions_without_global_pseudo_regions() -> None:
    regions = ses_regions()
    assert {"us-east-1", "eu-west-1", "us-gov-west-1", "cn-north-1"} <= set(regions)
    assert not [r for r in regions if r.endswith("global")]
