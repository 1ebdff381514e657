from __future__ import annotations

import json
from typing import Any

import pytest

from ses_smtp_rotator.endpoints import TlsMode
from ses_smtp_rotator.exceptions import InvalidSecretError
from ses_smtp_rotator.password import derive_smtp_password
from ses_smtp_rotator.secret import parse_secret
from tests import leakscan

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def test_bootstrap_value_gets_defaults() -> None:
    secret = parse_secret('{"iam_user_name": "ses-smtp"}', default_region="eu-west-1")
    assert (secret.region, secret.host, secret.port, secret.tls) == (
        "eu-west-1",
        "email-smtp.eu-west-1.amazonaws.com",
        587,
        TlsMode.STARTTLS,
    )
    assert not secret.has_credentials
    assert secret.to_dict() == {
        "iam_user_name": "ses-smtp",
        "region": "eu-west-1",
        "host": "email-smtp.eu-west-1.amazonaws.com",
        "port": 587,
    }


def test_new_key_derives_every_password_and_keeps_unknown_keys() -> None:
    # GIVEN a bootstrap value with an extra region and a key only the app knows about
    text = json.dumps(
        {
            "iam_user_name": "ses-smtp",
            "region": "us-east-1",
            "port": "465",
            "passwords": {"eu-west-1": None},
            "app_owner": "team-mail",
        }
    )
    # WHEN a key is put in
    secret = parse_secret(text).with_access_key(KEY_ID, SECRET_KEY)
    # THEN the JSON carries both passwords, the credentials and the unknown key
    out = json.loads(secret.to_json())
    assert out == {
        "iam_user_name": "ses-smtp",
        "region": "us-east-1",
        "host": "email-smtp.us-east-1.amazonaws.com",
        "port": 465,
        "username": KEY_ID,
        "password": "BLBM/9hSUELfq8Gw+rU1YcBjkOxGbhT2XG763xVLGWL9",
        "access_key_id": KEY_ID,
        "secret_access_key": SECRET_KEY,
        "passwords": {"eu-west-1": derive_smtp_password(SECRET_KEY, "eu-west-1")},
        "app_owner": "team-mail",
    }
    assert parse_secret(secret.to_json()).tls is TlsMode.IMPLICIT


def test_secret_access_key_can_be_left_out() -> None:
    secret = parse_secret('{"iam_user_name": "u", "region": "us-east-1"}').with_access_key(
        KEY_ID, SECRET_KEY, store_secret_access_key=False
    )
    assert "secret_access_key" not in secret.to_dict()
    assert secret.has_credentials


def test_round_trip_is_stable() -> None:
    secret = parse_secret(
        json.dumps({"iam_user_name": "u", "region": "us-east-1", "x": [1, {"y": 2}]})
    ).with_access_key(KEY_ID, SECRET_KEY)
    assert parse_secret(secret.to_json()).to_json() == secret.to_json()


def test_explicit_tls_mode_for_a_non_ses_port_survives() -> None:
    secret = parse_secret(
        '{"iam_user_name": "u", "region": "us-east-1", "host": "127.0.0.1", '
        '"port": 10465, "tls_mode": "tls"}'
    )
    assert secret.tls is TlsMode.IMPLICIT
    assert secret.to_dict()["tls_mode"] == "tls"
    assert (
        parse_secret('{"iam_user_name": "u", "region": "us-east-1", "port": 2525}').tls
        is TlsMode.STARTTLS
    )


def test_repr_never_shows_credentials() -> None:
    secret = parse_secret('{"iam_user_name": "u", "region": "us-east-1"}').with_access_key(
        KEY_ID, SECRET_KEY
    )
    assert SECRET_KEY not in repr(secret)
    assert str(secret.password) not in repr(secret)
    assert KEY_ID in str(secret)


BASE: dict[str, Any] = {"iam_user_name": "ses-smtp", "region": "us-east-1"}


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        pytest.param("{not json", None, "not valid JSON", id="invalid-json"),
        pytest.param("[1, 2]", None, "JSON list, expected a JSON object", id="json-list"),
        pytest.param(b"\xff\xfe", None, "not valid JSON", id="binary"),
        pytest.param('{"region": "us-east-1"}', "iam_user_name", "missing", id="no-user"),
        pytest.param({**BASE, "iam_user_name": "a b"}, "iam_user_name", "valid IAM", id="bad-user"),
        pytest.param({**BASE, "region": "moon-1"}, "region", "region", id="bad-region"),
        pytest.param({**BASE, "port": True}, "port", "TCP port", id="bool-port"),
        pytest.param({**BASE, "port": 70000}, "port", "TCP port", id="port-range"),
        pytest.param({**BASE, "host": "two words"}, "host", "host name", id="bad-host"),
        pytest.param({**BASE, "tls_mode": "ssl3"}, "tls_mode", "starttls", id="bad-tls"),
        pytest.param({**BASE, "username": KEY_ID}, "password", "missing", id="no-password"),
        pytest.param(
            {**BASE, "username": KEY_ID, "access_key_id": "AKIAOTHERKEY00000000", "password": "p"},
            "username",
            "differ",
            id="username-mismatch",
        ),
        pytest.param(
            {**BASE, "username": "ses-smtp-user", "password": "p"},
            "username",
            "access key id",
            id="iam-user-name-as-username",
        ),
        pytest.param({**BASE, "password": 5}, "password", "string", id="non-string-password"),
        pytest.param({**BASE, "passwords": ["eu-west-1"]}, "passwords", "object", id="list"),
        pytest.param({**BASE, "passwords": {"moon": "x"}}, "passwords", "region", id="bad-key"),
        pytest.param({**BASE, "passwords": {"eu-west-1": 1}}, "passwords", "strings", id="val"),
    ],
)
def test_bad_secret_names_field_and_never_echoes_values(
    value: str | bytes | dict[str, Any], field: str | None, message: str
) -> None:
    text = value if isinstance(value, (str, bytes)) else json.dumps(value)
    with pytest.raises(InvalidSecretError, match=message) as caught:
        parse_secret(text, secret_id="arn:aws:secretsmanager:us-east-1:1:secret:smtp")
    assert caught.value.field == field
    assert str(caught.value).startswith("secret arn:aws:secretsmanager:us-east-1:1:secret:smtp: ")
    assert "two words" not in str(caught.value)


def test_missing_region_without_default_is_refused() -> None:
    with pytest.raises(InvalidSecretError, match="no default region") as caught:
        parse_secret('{"iam_user_name": "u"}')
    assert caught.value.field == "region"


# --- hardening: malformed values are refused, never echoed, never silently defaulted -------------

MARKER = "zz-marker-9f3c"


@pytest.mark.parametrize(
    "region",
    [
        pytest.param([MARKER], id="list"),
        pytest.param({MARKER: MARKER}, id="dict"),
        pytest.param(987654321987, id="number"),
        pytest.param(12.5, id="float"),
        pytest.param(MARKER * 40, id="long-string"),
        pytest.param(f"us-east-1 {MARKER}", id="string-with-space"),
        pytest.param(f"{MARKER}-1", id="string-in-region-shape"),
    ],
)
def test_malformed_region_is_refused_without_echo(region: object) -> None:
    text = json.dumps({**BASE, "region": region})
    with pytest.raises(InvalidSecretError, match="'region'") as caught:
        parse_secret(text, secret_id="smtp")
    assert caught.value.field == "region"
    # Neither the error nor any exception chained to it (a traceback prints them) quotes the value
    shown = leakscan.exception_text(caught.value)
    assert MARKER not in shown
    assert "987654321987" not in shown


@pytest.mark.parametrize("depth", [50, 100_000])
def test_deeply_nested_json_is_a_clear_error(depth: int) -> None:
    # GIVEN a value whose unknown key nests lists far deeper than any secret needs
    text = '{"iam_user_name": "u", "region": "us-east-1", "x": ' + "[" * depth + "]" * depth + "}"
    # WHEN parsed THEN an InvalidSecretError says so (no RecursionError, no echo)
    with pytest.raises(InvalidSecretError, match="levels deep") as caught:
        parse_secret(text, secret_id="smtp")
    assert caught.value.field is None
    assert "[[" not in str(caught.value)


def test_nesting_a_secret_may_need_is_kept() -> None:
    value = {**BASE, "app": {"a": {"b": {"c": [[{"d": 1}]]}}}}
    assert parse_secret(json.dumps(value)).extra["app"] == value["app"]


@pytest.mark.parametrize("field", ["host", "region"])
@pytest.mark.parametrize("value", [0, False, 1, True, [], {}, "   ", 0.0])
def test_falsy_or_non_string_host_and_region_are_errors(field: str, value: object) -> None:
    with pytest.raises(InvalidSecretError) as caught:
        parse_secret(json.dumps({**BASE, field: value}), default_region="us-east-1")
    assert caught.value.field == field


@pytest.mark.parametrize("field", ["host", "region"])
@pytest.mark.parametrize("value", [None, ""])
def test_absent_null_or_empty_host_and_region_take_the_default(field: str, value: object) -> None:
    # The template's bootstrap value writes "" for "use the default" (SesRegion, SmtpHost).
    secret = parse_secret(json.dumps({**BASE, field: value}), default_region="us-east-1")
    assert (secret.region, secret.host) == ("us-east-1", "email-smtp.us-east-1.amazonaws.com")


@pytest.mark.parametrize(
    "port",
    [
        pytest.param("\uff12\uff15", id="fullwidth-digits"),
        pytest.param("\u0665\u0668\u0667", id="arabic-indic-digits"),
        pytest.param("\u096b\u096e\u096d", id="devanagari-digits"),
        pytest.param("\u00b2\u2075", id="superscript-digits"),
        pytest.param("0", id="zero-string"),
        pytest.param(0, id="zero"),
        pytest.param(-587, id="negative"),
        pytest.param("-587", id="negative-string"),
        pytest.param(65536, id="above-range"),
        pytest.param("65536", id="above-range-string"),
        pytest.param("9" * 5000, id="huge-digit-string"),
        pytest.param(" 587", id="leading-space"),
        pytest.param("587\n", id="trailing-newline"),
        pytest.param("", id="empty"),
        pytest.param(587.0, id="float"),
        pytest.param(False, id="false"),
        pytest.param([587], id="list"),
    ],
)
def test_port_must_be_ascii_digits_in_range(port: object) -> None:
    with pytest.raises(InvalidSecretError, match="TCP port") as caught:
        parse_secret(json.dumps({**BASE, "port": port}))
    assert caught.value.field == "port"


@pytest.mark.parametrize(("port", "expected"), [("587", 587), (1, 1), ("65535", 65535), (465, 465)])
def test_port_accepts_ascii_digits_and_numbers_in_range(port: object, expected: int) -> None:
    assert parse_secret(json.dumps({**BASE, "port": port})).port == expected


@pytest.mark.parametrize(
    ("value", "field"),
    [
        pytest.param({**BASE, "tls_mode": MARKER}, "tls_mode", id="tls-mode"),
        pytest.param({**BASE, "tls_mode": [MARKER]}, "tls_mode", id="tls-mode-list"),
        pytest.param({**BASE, "passwords": {MARKER: None}}, "passwords", id="passwords-key"),
        pytest.param({**BASE, "host": f"{MARKER} x"}, "host", id="host"),
        pytest.param({**BASE, "host": MARKER * 30}, "host", id="long-host"),
        pytest.param({**BASE, "port": MARKER}, "port", id="port"),
    ],
)
def test_no_exception_in_the_chain_quotes_a_value(value: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidSecretError) as caught:
        parse_secret(json.dumps(value))
    assert caught.value.field == field
    assert MARKER not in leakscan.exception_text(caught.value)
