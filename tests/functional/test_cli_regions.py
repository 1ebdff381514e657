"""Every command that calls AWS finds its region the same way, or says in one line how to give one.

The order: ``--region``, else the secret ARN's region, else the SDK's chain (``AWS_DEFAULT_REGION``,
the profile's), else ``AWS_REGION`` (which boto3 does not read, and which a shell or a systemd unit
often sets alone). With none: exit 2 and one line, never ``NoRegionError``'s traceback.
"""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, Final

import pytest

from ses_smtp_rotator import client as smtp_client
from ses_smtp_rotator.cli import EXIT_OK, EXIT_USAGE, main
from tests.unit.test_sync_examples import SYSTEMD, exec_start

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from sandbox.world import World

SECRET_NAME: Final = "ses-smtp-rotator"  # the world's secret


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    smtp_client.clear_cache()
    yield
    smtp_client.clear_cache()


def argv_of(command: str, secret_id: str, tmp_path: Path) -> list[str]:
    """A run of ``command`` on ``secret_id`` that only reads (rotate starts one, and returns)."""
    return {
        "status": ["status", "--secret-id", secret_id],
        "export": ["export", "--secret-id", secret_id, "--output", str(tmp_path / "smtp.env")],
        "check": ["check", "--secret-id", secret_id],
        "sync": ["sync", "--once", "--secret-id", secret_id, "--output", str(tmp_path / "s.env")],
        "rotate": ["rotate", "--secret-id", secret_id],
    }[command]


COMMANDS: Final = [
    pytest.param("status", id="status"),
    pytest.param("export", id="export"),
    pytest.param("check", id="check"),
    pytest.param("sync", id="sync"),
    pytest.param("rotate", id="rotate"),
]


@contextlib.contextmanager
def regions(tmp_path: Path, **values: str) -> Iterator[None]:
    """Only ``values`` name a region: no other variable, and a config file that sets none.

    Entered after the world started (it sets both variables for its function), and left before
    it stops, so that the world restores its own environment.
    """
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            patch.delenv(name, raising=False)
        config = tmp_path / "aws-config"
        config.write_text("[default]\n")
        patch.setenv("AWS_CONFIG_FILE", str(config))
        for name, value in values.items():
            patch.setenv(name, value)
        yield


@pytest.mark.parametrize("command", COMMANDS)
def test_no_region_anywhere_is_one_line_and_exit_2(
    world: World, command: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a rotated secret, named by its name, and no region in the environment or config
    assert world.rotate().ok
    capfd.readouterr()
    # WHEN the command runs
    with regions(tmp_path):
        code = main(argv_of(command, SECRET_NAME, tmp_path))
    # THEN one line says where a region comes from (exit 2), and no traceback
    out, err = capfd.readouterr()
    assert code == EXIT_USAGE, out + err
    assert err.count("\n") == 1, err
    assert "no AWS region: give --region, or the secret's ARN" in err
    assert "AWS_REGION" in err
    assert "Traceback" not in out + err


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    "source",
    [
        pytest.param("option", id="region-option"),
        pytest.param("arn", id="secret-arn"),
        pytest.param("aws-region", id="AWS_REGION-alone"),
        pytest.param("sdk", id="AWS_DEFAULT_REGION"),
    ],
)
def test_each_source_of_the_region_is_enough(
    world: World, command: str, source: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a rotated secret and the region given by one source only
    assert world.rotate().ok
    secret_id = world.secret_arn if source == "arn" else SECRET_NAME
    argv = argv_of(command, secret_id, tmp_path)
    variables = {}
    if source == "option":
        argv += ["--region", world.region]
    elif source == "aws-region":
        variables["AWS_REGION"] = world.region
    elif source == "sdk":
        variables["AWS_DEFAULT_REGION"] = world.region
    capfd.readouterr()
    # WHEN the command runs / THEN it reads the secret in that region
    with regions(tmp_path, **variables):
        code = main(argv)
        if command == "rotate":  # the rotation it started runs with the same environment
            assert world.service is not None
            assert world.service.join(timeout=30.0)
    out, err = capfd.readouterr()
    assert code == EXIT_OK, out + err
    assert "Traceback" not in err


def test_the_region_option_wins_over_the_environment(
    world: World, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # GIVEN AWS_DEFAULT_REGION pointing at a region without the secret
    assert world.rotate().ok
    capfd.readouterr()
    with regions(tmp_path, AWS_DEFAULT_REGION="eu-west-3"):
        # WHEN export runs with --region / THEN it reads the secret where --region says
        argv = argv_of("export", SECRET_NAME, tmp_path)
        assert main([*argv, "--region", world.region]) == EXIT_OK
        # AND without it, in the chain's region, where the secret is not
        assert main(argv) != EXIT_OK
    assert "ResourceNotFoundException" in capfd.readouterr().err


def test_the_systemd_example_works_as_shipped(
    world: World, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the shipped unit's command and environment file, which sets AWS_REGION alone, with
    # the secret named by its name (the file's ARN names the region itself) and a file here
    argv = exec_start(SYSTEMD / "ses-smtp-sync.service")[1:]
    env = dict(
        line.split("=", 1)
        for line in (SYSTEMD / "ses-smtp-sync.env").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    assert set(env) == {"SES_SMTP_SECRET_ID", "AWS_REGION"}
    argv[argv.index("--secret-id") + 1] = SECRET_NAME
    output = tmp_path / "sasl_passwd"
    argv[argv.index("--output") + 1] = str(output)
    argv[argv.index("--on-change") + 1] = "true"
    assert world.rotate().ok
    capfd.readouterr()
    # WHEN its one pass runs with the file's one variable (its region played by the world's)
    with regions(tmp_path, AWS_REGION=world.region):
        code = main(argv)
    # THEN it wrote the postfix map from the secret, with no traceback
    out, err = capfd.readouterr()
    assert code == EXIT_OK, out + err
    assert re.fullmatch(r"\[\S+\]:\d+ AKIA\w+:\S+\n", output.read_text())
    assert "Traceback" not in err
