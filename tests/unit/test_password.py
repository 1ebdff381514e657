from __future__ import annotations

import base64
import warnings

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from ses_smtp_rotator import password
from ses_smtp_rotator.exceptions import InvalidRegionError

DOC_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def botocore_v4_password(secret_access_key: str, region: str) -> str:
    """Independent oracle: botocore's own SigV4 signing-key chain, dated 11111111."""
    auth = SigV4Auth(Credentials("AKIDEXAMPLE", secret_access_key), "ses", region)
    request = AWSRequest(method="POST", url="https://example.invalid/")
    request.context["timestamp"] = "11111111T000000Z"
    signature_hex = auth.signature("SendRawEmail", request)
    return base64.b64encode(b"\x04" + bytes.fromhex(signature_hex)).decode()


@pytest.mark.parametrize(
    ("key", "region", "expected"),
    [
        pytest.param(
            DOC_KEY,
            "us-east-1",
            "BLBM/9hSUELfq8Gw+rU1YcBjkOxGbhT2XG763xVLGWL9",
            id="aws-doc-vector",
        ),
        pytest.param(DOC_KEY, "eu-west-1", botocore_v4_password(DOC_KEY, "eu-west-1"), id="eu"),
        pytest.param(
            DOC_KEY, "us-gov-west-1", botocore_v4_password(DOC_KEY, "us-gov-west-1"), id="govcloud"
        ),
        pytest.param(
            DOC_KEY,
            "eusc-de-east-1",
            botocore_v4_password(DOC_KEY, "eusc-de-east-1"),
            id="region-newer-than-any-list",
        ),
    ],
)
def test_v4_password_matches_known_answers(key: str, region: str, expected: str) -> None:
    assert password.derive_smtp_password(key, region) == expected


@settings(max_examples=50)
@given(
    key=st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", min_size=1
    ),
    region=st.sampled_from(["us-east-1", "ap-southeast-5", "il-central-1", "ca-west-1"]),
)
def test_v4_password_agrees_with_botocore_sigv4(key: str, region: str) -> None:
    assert password.derive_smtp_password(key, region) == botocore_v4_password(key, region)


def test_v4_password_differs_per_region() -> None:
    assert password.derive_smtp_password(DOC_KEY, "us-east-1") != password.derive_smtp_password(
        DOC_KEY, "us-east-2"
    )


def test_v2_password_matches_known_answer_and_warns() -> None:
    with pytest.warns(DeprecationWarning, match="deprecated"):
        result = password.derive_legacy_v2_password("public+vector+key/for+docs")
    assert result == "AibxEnOVHl6KQTPJgBoMNDUMR8g3xd53v72YgDRuFBsm"


@pytest.mark.parametrize(
    "region",
    [
        pytest.param("us-east", id="no-number"),
        pytest.param("US-EAST-1", id="upper-case"),
        pytest.param("", id="empty"),
        pytest.param("email-smtp.us-east-1.amazonaws.com", id="host-not-region"),
        pytest.param("us-east-1 ", id="trailing-space"),
    ],
)
def test_bad_region_is_refused(region: str) -> None:
    with pytest.raises(InvalidRegionError, match="not an AWS region name"):
        password.derive_smtp_password(DOC_KEY, region)


@pytest.mark.parametrize("key", [pytest.param("", id="empty"), pytest.param("   ", id="blank")])
def test_empty_key_is_refused(key: str) -> None:
    with pytest.raises(ValueError, match="secret access key is empty"):
        password.derive_smtp_password(key, "us-east-1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(ValueError, match="empty"):
            password.derive_legacy_v2_password(key)


def test_passwords_for_several_regions() -> None:
    result = password.derive_smtp_passwords(DOC_KEY, ["us-east-1", "eu-west-1", "us-east-1"])
    assert result == {
        "us-east-1": "BLBM/9hSUELfq8Gw+rU1YcBjkOxGbhT2XG763xVLGWL9",
        "eu-west-1": botocore_v4_password(DOC_KEY, "eu-west-1"),
    }


@pytest.mark.parametrize(
    ("candidate", "version"),
    [
        pytest.param("BLBM/9hSUELfq8Gw+rU1YcBjkOxGbhT2XG763xVLGWL9", 4, id="v4"),
        pytest.param("AibxEnOVHl6KQTPJgBoMNDUMR8g3xd53v72YgDRuFBsm", 2, id="v2"),
        pytest.param(DOC_KEY, None, id="raw-secret-key"),
        pytest.param("not base64 !", None, id="garbage"),
        pytest.param(base64.b64encode(b"\x07" + bytes(32)).decode(), None, id="unknown-version"),
    ],
)
def test_password_version_recognises_derived_passwords(candidate: str, version: int | None) -> None:
    assert password.password_version(candidate) == version
