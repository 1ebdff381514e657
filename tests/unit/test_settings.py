from __future__ import annotations

import pytest

from rotation_handler.settings import (
    DEFAULT_FLEET_TAG_KEY,
    ConfigurationError,
    Fleet,
    OldKeyAction,
    Settings,
)


def test_defaults() -> None:
    settings = Settings.from_env({"AWS_DEFAULT_REGION": "eu-west-1"})
    assert settings == Settings(region="eu-west-1")
    assert settings.old_key_action is OldKeyAction.DEACTIVATE
    assert settings.store_secret_access_key is True
    assert settings.smtp_test_timeout == 40.0


def test_every_variable_is_read() -> None:
    settings = Settings.from_env(
        {
            "AWS_REGION": "us-west-2",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "SECRET_ARN": "arn:aws:secretsmanager:us-west-2:1:secret:s",
            "SMTP_IAM_USER_NAME": "ses-smtp",
            "SMTP_TEST_TIMEOUT_SECONDS": "12.5",
            "SMTP_ATTEMPT_TIMEOUT_SECONDS": "3",
            "OLD_KEY_ACTION": " Delete ",
            "STORE_SECRET_ACCESS_KEY": "no",
            "POWERTOOLS_METRICS_NAMESPACE": "Mail",
        }
    )
    assert settings == Settings(
        region="us-west-2",
        secret_arn="arn:aws:secretsmanager:us-west-2:1:secret:s",
        iam_user_name="ses-smtp",
        smtp_test_timeout=12.5,
        smtp_attempt_timeout=3.0,
        old_key_action=OldKeyAction.DELETE,
        store_secret_access_key=False,
        metrics_namespace="Mail",
    )


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        pytest.param({}, "AWS_REGION", id="no-region"),
        pytest.param({"OLD_KEY_ACTION": "archive"}, "OLD_KEY_ACTION", id="bad-action"),
        pytest.param(
            {"STORE_SECRET_ACCESS_KEY": "maybe"}, "STORE_SECRET_ACCESS_KEY", id="bad-flag"
        ),
        pytest.param({"SMTP_TEST_TIMEOUT_SECONDS": "soon"}, "SMTP_TEST_TIMEOUT_SECONDS", id="nan"),
        pytest.param({"SMTP_TEST_TIMEOUT_SECONDS": "0"}, "SMTP_TEST_TIMEOUT_SECONDS", id="zero"),
        pytest.param(
            {"SMTP_TEST_TIMEOUT_SECONDS": "900"}, "SMTP_TEST_TIMEOUT_SECONDS", id="too-long"
        ),
        pytest.param(
            {"SMTP_ATTEMPT_TIMEOUT_SECONDS": "-1"}, "SMTP_ATTEMPT_TIMEOUT_SECONDS", id="neg"
        ),
        pytest.param(
            {"SMTP_TEST_TIMEOUT_SECONDS": "\u0664\u0660"}, "SMTP_TEST_TIMEOUT_SECONDS", id="arabic"
        ),
        pytest.param({"SES_REGION": "Europe"}, "SES_REGION", id="bad-region"),
        pytest.param({"SMTP_HOST": "-smtp.example"}, "SMTP_HOST", id="bad-host"),
        pytest.param({"SMTP_PORT": "70000"}, "SMTP_PORT", id="port-too-big"),
        pytest.param({"SMTP_PORT": "\uff15\uff18\uff17"}, "SMTP_PORT", id="fullwidth-port"),
        *(
            pytest.param({"OLD_KEY_GRACE_PERIOD": bad}, "OLD_KEY_GRACE_PERIOD", id=f"grace-{bad}")
            for bad in ("24", "1w", "-1h", "1.5h", "\u0662h", "366d", "h", "0s0")
        ),
        *(
            pytest.param(
                {"CROSS_ACCOUNT_ROLE_NAME": bad}, "CROSS_ACCOUNT_ROLE_NAME", id=f"role-{i}"
            )
            for i, bad in enumerate(("team/member", "arn:aws:iam::1:role/x", "a b", "r" * 65))
        ),
        *(
            pytest.param({"EXTRA_SES_REGIONS": bad}, "EXTRA_SES_REGIONS", id=f"regions-{i}")
            for i, bad in enumerate(("Europe", "us-east-1;eu-west-1", "us-east-1,eu west 1"))
        ),
    ],
)
def test_bad_value_names_the_variable(env: dict[str, str], variable: str) -> None:
    base = {"AWS_REGION": "us-east-1"} if variable != "AWS_REGION" else {}
    with pytest.raises(ConfigurationError, match=variable):
        Settings.from_env(base | env)


def test_test_message_addresses() -> None:
    base = {"AWS_REGION": "us-east-1"}
    assert Settings.from_env(base).smtp_test_sender is None
    settings = Settings.from_env(base | {"SMTP_TEST_SENDER": " ops@example.com "})
    assert settings.smtp_test_sender == "ops@example.com"
    assert settings.smtp_test_recipient == "success@simulator.amazonses.com"
    with pytest.raises(ConfigurationError, match="SMTP_TEST_RECIPIENT"):
        Settings.from_env(base | {"SMTP_TEST_RECIPIENT": "not an address"})


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [("", 0), ("0", 0), ("90s", 90), ("30m", 1800), (" 24h ", 86400), ("7d", 604800)],
)
def test_grace_period_durations(raw: str, seconds: int) -> None:
    env = {"AWS_REGION": "us-east-1", "OLD_KEY_GRACE_PERIOD": raw}
    assert Settings.from_env(env).old_key_grace_period == seconds


FLEET = {"AWS_REGION": "us-east-1", "FLEET_USER_PATH": "/ses-smtp/", "FLEET_TAG_VALUE": "default"}


def test_fleet_mode_is_off_by_default_and_on_with_the_path() -> None:
    assert Settings.from_env({"AWS_REGION": "us-east-1"}).fleet is None
    settings = Settings.from_env(FLEET)
    assert settings.fleet == Fleet(
        user_path="/ses-smtp/", tag_key=DEFAULT_FLEET_TAG_KEY, tag_value="default"
    )
    assert DEFAULT_FLEET_TAG_KEY == "ses-smtp-rotation:fleet"
    nested = Settings.from_env(FLEET | {"FLEET_USER_PATH": "/apps/mail/", "FLEET_TAG_KEY": "team"})
    assert nested.fleet == Fleet(user_path="/apps/mail/", tag_key="team", tag_value="default")


@pytest.mark.parametrize(
    ("change", "variables"),
    [
        pytest.param(
            {"SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:s"},
            ["SECRET_ARN"],
            id="with-secret",
        ),
        pytest.param({"SMTP_IAM_USER_NAME": "ses-smtp"}, ["SMTP_IAM_USER_NAME"], id="with-user"),
        pytest.param({"FLEET_TAG_VALUE": ""}, ["FLEET_TAG_VALUE"], id="no-fleet-name"),
        pytest.param({"FLEET_TAG_VALUE": "a,b"}, ["FLEET_TAG_VALUE"], id="bad-fleet-name"),
        pytest.param({"FLEET_TAG_KEY": "aws:fleet"}, ["FLEET_TAG_KEY"], id="aws-tag-key"),
        pytest.param({"FLEET_TAG_KEY": "k" * 129}, ["FLEET_TAG_KEY"], id="long-tag-key"),
        *(
            pytest.param({"FLEET_USER_PATH": bad}, ["FLEET_USER_PATH"], id=f"path-{bad!r}")
            for bad in ("/", "//", "ses-smtp/", "/ses-smtp", "/ses smtp/", "/s\u00e9/", "/a//")
        ),
        pytest.param(
            {"FLEET_USER_PATH": "", "FLEET_TAG_VALUE": "default"},
            ["FLEET_TAG_VALUE", "FLEET_USER_PATH"],
            id="name-without-path",
        ),
    ],
)
def test_bad_fleet_settings_name_the_variables(
    change: dict[str, str], variables: list[str]
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env(FLEET | change)
    assert all(variable in str(raised.value) for variable in variables)


def test_cross_account_role_name_and_extra_regions() -> None:
    # GIVEN neither variable / THEN a secret of another account is refused and no region is extra
    base = {"AWS_REGION": "eu-west-1"}
    assert Settings.from_env(base).cross_account_role_name is None
    assert Settings.from_env(base).extra_ses_regions == ()
    # GIVEN both / THEN the role name is kept and the regions listed once each, in their order
    settings = Settings.from_env(
        base
        | {
            "CROSS_ACCOUNT_ROLE_NAME": " ses-smtp-rotation-member ",
            "EXTRA_SES_REGIONS": " us-east-1, eu-central-1,,us-east-1 ",
        }
    )
    assert settings.cross_account_role_name == "ses-smtp-rotation-member"
    assert settings.extra_ses_regions == ("us-east-1", "eu-central-1")
