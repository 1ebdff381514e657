"""``ses-smtp-rotator check`` end to end against the SES-like server and moto's IAM."""

from __future__ import annotations

import io
import json
import socket
import sys
import warnings
from typing import TYPE_CHECKING

import boto3
import pytest

from ses_smtp_rotator import cli
from ses_smtp_rotator.password import derive_legacy_v2_password

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_iam import IAMClient

    from sandbox.ses_smtp import SesSmtpServer
    from tests.conftest import IamKey


@pytest.fixture
def run_check(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., tuple[int, str]]:
    """Run ``check`` with a password on stdin; return the exit code and stdout+stderr."""
    monkeypatch.delenv("SMTP_PASSWORD", raising=False)
    monkeypatch.delenv("SES_SECRET_ACCESS_KEY", raising=False)

    def run(*argv: str, password: str = "", secrets: tuple[str, ...] = ()) -> tuple[int, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(password))
        code = cli.main(["check", "--timeout", "2", *argv])
        out, err = capsys.readouterr()
        for secret in (password, *secrets):
            if secret:
                assert secret not in out + err
        return code, out + err

    return run


def target(server: SesSmtpServer, username: str) -> tuple[str, ...]:
    return ("--host", server.host, "--port", str(server.port), "--username", username)


def test_good_credentials_print_ok(
    ses_server: SesSmtpServer, smtp_user: IamKey, run_check: Callable[..., tuple[int, str]]
) -> None:
    # GIVEN the right password piped on stdin, WHEN checking THEN OK and exit 0
    code, output = run_check(
        *target(ses_server, smtp_user.access_key_id), password=smtp_user.password()
    )
    assert code == 0
    assert output.startswith("OK: logged in to localhost:")


def test_password_from_the_environment_and_implicit_tls(
    ses_server_factory: Callable[..., SesSmtpServer],
    smtp_user: IamKey,
    run_check: Callable[..., tuple[int, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = ses_server_factory(implicit_tls=True)
    monkeypatch.setenv("SMTP_PASSWORD", smtp_user.password())
    argv = ("--host", "localhost", "--port", str(server.tls_port), "--tls", "tls")
    code, output = run_check(*argv, "--username", smtp_user.access_key_id)
    assert code == 0, output


def v2(secret: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return derive_legacy_v2_password(secret)


@pytest.mark.parametrize(
    ("username_of", "password_of", "cause", "says"),
    [
        pytest.param(
            lambda key: key.access_key_id,
            lambda key: key.password("eu-west-1"),
            "wrong-region",
            "derived for eu-west-1, but the endpoint is in us-east-1",
            id="wrong-region",
        ),
        pytest.param(
            lambda key: key.access_key_id,
            lambda key: key.secret_access_key,
            "raw-secret-key",
            "is the raw secret access key",
            id="raw-secret-key",
        ),
        pytest.param(
            lambda key: key.user_name,
            lambda key: key.password(),
            "user-name-not-access-key-id",
            "'ses-smtp-user' is not an access key id",
            id="iam-user-name",
        ),
        pytest.param(
            lambda key: key.access_key_id,
            lambda key: v2(key.secret_access_key),
            "legacy-v2-password",
            "version 2 SMTP password of this key",
            id="v2-password",
        ),
    ],
)
def test_535_is_diagnosed(  # noqa: PLR0913 - a table row plus four fixtures
    *,
    ses_server: SesSmtpServer,
    smtp_user: IamKey,
    run_check: Callable[..., tuple[int, str]],
    monkeypatch: pytest.MonkeyPatch,
    username_of: Callable[[IamKey], str],
    password_of: Callable[[IamKey], str],
    cause: str,
    says: str,
) -> None:
    # GIVEN credentials with one known mistake, and the secret key available for the diagnosis
    monkeypatch.setenv("SES_SECRET_ACCESS_KEY", smtp_user.secret_access_key)
    # WHEN checking against the us-east-1 server
    code, output = run_check(
        *target(ses_server, username_of(smtp_user)),
        "--region",
        "us-east-1",
        password=password_of(smtp_user),
        secrets=(smtp_user.secret_access_key,),
    )
    # THEN exit 1, the 535, and the named cause
    assert code == 1
    assert "FAILED (auth-rejected)" in output
    assert f"likely cause ({cause})" in output
    assert says in output


@pytest.mark.parametrize(
    ("prepare", "cause", "says"),
    [
        pytest.param("new", "key-too-new", "created 0 s ago", id="key-too-new"),
        pytest.param("inactive", "key-inactive", "is Inactive", id="key-inactive"),
    ],
)
def test_535_diagnosis_uses_the_key_age_and_status_from_iam(  # noqa: PLR0913 - row + fixtures
    *,
    ses_server_factory: Callable[..., SesSmtpServer],
    smtp_user: IamKey,
    run_check: Callable[..., tuple[int, str]],
    iam: IAMClient,
    prepare: str,
    cause: str,
    says: str,
) -> None:
    # GIVEN the right password, but a key that SES does not accept yet (or any more)
    server = ses_server_factory(propagation_delay=60.0 if prepare == "new" else 0.0)
    if prepare == "inactive":
        iam.update_access_key(
            UserName=smtp_user.user_name, AccessKeyId=smtp_user.access_key_id, Status="Inactive"
        )
    # WHEN checking THEN the IAM lookup names the cause
    code, output = run_check(
        *target(server, smtp_user.access_key_id), password=smtp_user.password()
    )
    assert code == 1
    assert f"likely cause ({cause})" in output
    assert says in output


def test_unknown_key_says_the_age_could_not_be_checked(
    ses_server: SesSmtpServer, run_check: Callable[..., tuple[int, str]]
) -> None:
    # GIVEN a well-formed key id that IAM does not know
    code, output = run_check(*target(ses_server, "AKIAAAAAAAAAAAAAAAAA"), password="x" * 44)
    # THEN exit 1, an unknown cause with the checklist, and a note instead of a crash
    assert code == 1
    assert "likely cause (unknown)" in output
    assert "could not be checked in IAM" in output


def test_other_failures_print_the_probe_message_without_a_diagnosis(
    smtp_user: IamKey, run_check: Callable[..., tuple[int, str]]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = ("--host", "127.0.0.1", "--port", str(port), "--username", smtp_user.access_key_id)
    code, output = run_check(*argv, password=smtp_user.password())
    assert code == 1
    assert "FAILED (connection-refused)" in output
    assert "likely cause" not in output


def put_secret(value: dict[str, object]) -> str:
    client = boto3.client("secretsmanager")
    return client.create_secret(Name="smtp", SecretString=json.dumps(value))["ARN"]


def test_check_reads_everything_from_a_secret(
    ses_server: SesSmtpServer, smtp_user: IamKey, run_check: Callable[..., tuple[int, str]]
) -> None:
    # GIVEN a rotated secret in this project's schema
    arn = put_secret(
        {
            "iam_user_name": smtp_user.user_name,
            "region": "us-east-1",
            "host": "localhost",
            "port": ses_server.port,
            "username": smtp_user.access_key_id,
            "password": smtp_user.password(),
            "access_key_id": smtp_user.access_key_id,
            "secret_access_key": smtp_user.secret_access_key,
        }
    )
    # WHEN checking by secret id THEN OK
    code, output = run_check("--secret-id", arn, secrets=(smtp_user.secret_access_key,))
    assert code == 0, output


def test_secret_with_a_wrong_region_password_is_diagnosed(
    ses_server: SesSmtpServer, smtp_user: IamKey, run_check: Callable[..., tuple[int, str]]
) -> None:
    arn = put_secret(
        {
            "iam_user_name": smtp_user.user_name,
            "region": "us-east-1",
            "host": "localhost",
            "port": ses_server.port,
            "username": smtp_user.access_key_id,
            "password": smtp_user.password("eu-central-1"),
            "secret_access_key": smtp_user.secret_access_key,
        }
    )
    code, output = run_check(
        "--secret-id",
        arn,
        secrets=(smtp_user.secret_access_key, smtp_user.password("eu-central-1")),
    )
    assert code == 1
    assert "likely cause (wrong-region): the password was derived for eu-central-1" in output


HOST_USER = ("--host", "127.0.0.1", "--username", "AKIAAAAAAAAAAAAAAAAA")
BAD_TIMEOUT = "--timeout: must be a number of seconds"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        pytest.param(("--secret-id", "smtp", "--host", "h"), "not both", id="both-modes"),
        pytest.param(("--host", "h"), "missing --port, --username", id="missing"),
        pytest.param(
            (*HOST_USER, "--port", "587", "--version-stage", "AWSPENDING"),
            "give --secret-id too",
            id="stage-without-secret",
        ),
        pytest.param((*HOST_USER, "--port", "587", "--timeout", "0"), BAD_TIMEOUT, id="timeout-0"),
        pytest.param((*HOST_USER, "--port", "587", "--timeout", "-1"), BAD_TIMEOUT, id="timeout-1"),
        pytest.param((*HOST_USER, "--port", "587", "--timeout", "nan"), BAD_TIMEOUT, id="nan"),
        pytest.param((*HOST_USER, "--port", "587", "--timeout", "inf"), BAD_TIMEOUT, id="inf"),
        pytest.param(
            (*HOST_USER, "--port", "70000"), "--port: must be a TCP port", id="port-70000"
        ),
        pytest.param((*HOST_USER, "--port", "0"), "--port: must be a TCP port", id="port-0"),
        pytest.param(
            (*HOST_USER, "--port", "\u0665\u0668\u0667"),
            "--port: must be a TCP port",
            id="port-digits",
        ),
    ],
)
def test_bad_check_input_exits_2(
    run_check: Callable[..., tuple[int, str]], argv: tuple[str, ...], says: str
) -> None:
    # WHEN check gets a bad or conflicting argument (the time-out and the port: issue 14)
    # (run_check adds --timeout 2 first: a later --timeout wins, as in argparse)
    code, output = run_check(*argv, password="pw")
    # THEN exit 2 with one clear line, no traceback, and no connection attempt
    assert code == 2
    assert says in output
    assert "Traceback" not in output
    assert "FAILED" not in output
    assert len(output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("secret_id", "says"),
    [
        pytest.param("nope", "cannot read secret nope (ResourceNotFoundException)", id="missing"),
        pytest.param("bootstrap", "first rotation has not completed", id="bootstrap-secret"),
    ],
)
def test_an_unreadable_or_never_rotated_secret_fails_as_in_export(
    aws: None,  # noqa: ARG001 - needs moto active
    run_check: Callable[..., tuple[int, str]],
    capsys: pytest.CaptureFixture[str],
    secret_id: str,
    says: str,
) -> None:
    # GIVEN a secret that holds only its bootstrap value
    boto3.client("secretsmanager").create_secret(
        Name="bootstrap", SecretString='{"iam_user_name": "ses-smtp-user"}'
    )
    # WHEN check and export read it
    code, output = run_check("--secret-id", secret_id)
    exported = cli.main(["export", "--secret-id", secret_id])
    _, export_error = capsys.readouterr()
    # THEN both exit 1 with the same message (one reader, one error, one exit code)
    assert (code, exported) == (1, 1)
    assert says in output
    assert output.strip() == export_error.strip()
