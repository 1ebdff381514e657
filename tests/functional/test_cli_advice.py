"""Each failure to read the secret gets the advice of its own cause.

No AWS credentials is not a wrong name; a secret without an ``AWSPENDING`` version exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ses_smtp_rotator import client as smtp_client
from ses_smtp_rotator.cli import EXIT_FAILED, main

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from sandbox.world import World

CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    smtp_client.clear_cache()
    yield
    smtp_client.clear_cache()


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["status"], id="status"),
        pytest.param(["export"], id="export"),
        pytest.param(["check"], id="check"),
        pytest.param(["rotate"], id="rotate"),
    ],
)
def test_no_credentials_is_named_as_such(
    world: World, argv: list[str], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # GIVEN no AWS credentials anywhere (no variable, no file, no instance role)
    capfd.readouterr()
    with pytest.MonkeyPatch.context() as patch:
        for name in CREDENTIAL_VARIABLES:
            patch.delenv(name, raising=False)
        empty = tmp_path / "empty"
        empty.write_text("")
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
        patch.setenv("AWS_CONFIG_FILE", str(empty))
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        # WHEN a command reads the secret
        code = main([*argv, "--secret-id", world.secret_arn])
    # THEN one line says no credentials were found and how to give them, not to check the name
    out, err = capfd.readouterr()
    assert code == EXIT_FAILED, out + err
    assert "(NoCredentialsError): no AWS credentials found: set AWS_PROFILE" in err
    assert "check its name" not in err


def test_a_missing_pending_version_is_not_a_missing_secret(
    world: World, capfd: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a rotated secret with no rotation in progress
    assert world.rotate().ok
    capfd.readouterr()
    # WHEN check reads its AWSPENDING version
    code = main(["check", "--secret-id", world.secret_arn, "--version-stage", "AWSPENDING"])
    # THEN it says that the secret has no such version, and where to look, not "check its name"
    out, err = capfd.readouterr()
    assert code == EXIT_FAILED, out + err
    assert "has no version labelled AWSPENDING: no rotation is in progress" in err
    assert f"ses-smtp-rotator status --secret-id {world.secret_arn}" in err
    assert "check its name" not in err


def test_a_missing_secret_still_says_to_check_its_name(
    world: World, capfd: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a secret id that names no secret / WHEN check reads its AWSPENDING version
    capfd.readouterr()
    arn = world.secret_arn.replace("ses-smtp-rotator", "no-such-secret")
    code = main(["check", "--secret-id", arn, "--version-stage", "AWSPENDING"])
    # THEN the advice is about the name
    assert code == EXIT_FAILED
    assert "(ResourceNotFoundException): check its name" in capfd.readouterr().err
