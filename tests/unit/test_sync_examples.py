"""The shipped systemd units and Postfix snippet fit ``sync``: the CLI accepts what they run."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path
from typing import Final

import pytest

from ses_smtp_rotator import _export
from ses_smtp_rotator.cli import build_parser
from ses_smtp_rotator.credentials import SmtpCredentials
from ses_smtp_rotator.endpoints import TlsMode

ROOT: Final = Path(__file__).resolve().parents[2]
SYSTEMD: Final = ROOT / "examples" / "systemd"
POSTFIX: Final = ROOT / "examples" / "postfix" / "main.cf.snippet"
SERVICES: Final = sorted(SYSTEMD.glob("*.service"))
MAP_FILE: Final = "/etc/postfix/sasl_passwd"


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign] # systemd keys keep case
    parser.read_string(path.read_text(encoding="utf-8"))
    return parser


def env_file() -> dict[str, str]:
    lines = (SYSTEMD / "ses-smtp-sync.env").read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def exec_start(path: Path) -> list[str]:
    """ExecStart as systemd runs it: quotes honoured, ``${NAME}`` from the EnvironmentFile."""
    service = unit(path)["Service"]
    assert service["EnvironmentFile"] == "/etc/ses-smtp-rotator/sync.env"
    env = env_file()
    return [
        re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], w)
        for w in shlex.split(service["ExecStart"])
    ]


def postfix_settings() -> dict[str, str]:
    lines = POSTFIX.read_text(encoding="utf-8").splitlines()
    pairs = [line.split("=", 1) for line in lines if line.strip() and not line.startswith("#")]
    return {name.strip(): value.strip() for name, value in pairs}


def test_both_choices_are_shipped() -> None:
    # THEN a oneshot service with its timer, and a looping service, are in examples/systemd
    assert [p.name for p in SERVICES] == ["ses-smtp-sync-loop.service", "ses-smtp-sync.service"]
    timer = unit(SYSTEMD / "ses-smtp-sync.timer")
    assert "Unit" not in timer["Timer"]  # so it starts the service of its own name
    assert timer["Timer"]["OnUnitActiveSec"]
    assert unit(SYSTEMD / "ses-smtp-sync.service")["Service"]["Type"] == "oneshot"


@pytest.mark.parametrize("path", SERVICES, ids=[p.name for p in SERVICES])
def test_exec_start_is_a_sync_command_line_the_cli_accepts(path: Path) -> None:
    # GIVEN the unit's ExecStart, as systemd would split and expand it
    program, *argv = exec_start(path)
    assert Path(program).name == "ses-smtp-rotator"
    assert Path(program).is_absolute()  # systemd wants an absolute path
    # WHEN the CLI parses it (a bad option or value raises UsageError)
    args = build_parser().parse_args(argv)
    # THEN it keeps Postfix's map file in step, and the command rebuilds that map and reloads
    assert args.command == "sync"
    assert (args.format, args.output) == ("postfix", MAP_FILE)
    assert args.secret_id == env_file()["SES_SMTP_SECRET_ID"]
    assert args.on_change == f"postmap {MAP_FILE} && postfix reload"
    # AND the oneshot service makes one pass, the other loops
    assert args.once is (unit(path)["Service"]["Type"] == "oneshot")


def test_the_environment_file_holds_no_secret() -> None:
    assert set(env_file()) == {"SES_SMTP_SECRET_ID", "AWS_REGION"}


def test_the_postfix_snippet_reads_the_map_sync_writes() -> None:
    # GIVEN the snippet's settings and the line sync writes for the region's SES endpoint
    settings = postfix_settings()
    region = env_file()["AWS_REGION"]
    creds = SmtpCredentials(
        host=f"email-smtp.{region}.amazonaws.com",
        port=587,
        username="AKIAIOSFODNN7EXAMPLE",
        password="not-a-real-password",
        region=region,
        tls=TlsMode.STARTTLS,
    )
    line = _export.FORMATS["postfix"](creds)
    # THEN the map is the file the units write, and its key is exactly the relayhost
    assert settings["smtp_sasl_password_maps"] == f"hash:{MAP_FILE}"
    assert line.split(" ", 1)[0] == settings["relayhost"]
    # AND SASL is on, and the password never goes out without TLS
    assert settings["smtp_sasl_auth_enable"] == "yes"
    assert settings["smtp_sasl_security_options"] == "noanonymous"
    assert settings["smtp_tls_security_level"] == "encrypt"
