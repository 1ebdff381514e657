"""``ses-smtp-rotator derive``: keys from stdin or the environment, never argv; exit codes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from ses_smtp_rotator import cli
from ses_smtp_rotator.password import derive_legacy_v2_password, derive_smtp_password

KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)


def run(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, stdin: str
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(
            ["--region", "eu-west-1"],
            derive_smtp_password(KEY, "eu-west-1") + "\n",
            id="one-region-bare",
        ),
        pytest.param(
            ["--region", "eu-west-1", "--region", "us-east-1", "--region", "eu-west-1"],
            f"eu-west-1\t{derive_smtp_password(KEY, 'eu-west-1')}\n"
            f"us-east-1\t{derive_smtp_password(KEY, 'us-east-1')}\n",
            id="several-regions-tab-separated",
        ),
    ],
)
def test_derive_prints_one_password_per_region(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    expected: str,
) -> None:
    # GIVEN the key piped on stdin, WHEN deriving
    code, out, err = run(["derive", *argv], capsys, monkeypatch, KEY + "\n")
    # THEN exit 0 and exactly the passwords on stdout
    assert (code, out, err) == (0, expected, "")


def test_derive_json(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run(["derive", "--region", "ap-south-1", "--json"], capsys, monkeypatch, KEY)
    assert code == 0
    assert json.loads(out) == {"ap-south-1": derive_smtp_password(KEY, "ap-south-1")}


def test_derive_reads_the_environment_when_stdin_is_empty(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN no stdin input and the key in AWS_SECRET_ACCESS_KEY
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", KEY)
    code, out, _ = run(["derive", "--region", "eu-west-1"], capsys, monkeypatch, "")
    assert (code, out) == (0, derive_smtp_password(KEY, "eu-west-1") + "\n")


def test_legacy_v2_password_with_a_deprecation_note(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        legacy = derive_legacy_v2_password(KEY)
    code, out, err = run(["derive", "--legacy-v2"], capsys, monkeypatch, KEY)
    assert (code, out) == (0, legacy + "\n")
    assert "deprecated" in err


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["derive", "--region", "eu-west-1", KEY], id="positional"),
        pytest.param(["derive", "--region", "eu-west-1", "--secret-access-key", KEY], id="option"),
        pytest.param(
            ["derive", f"--secret-access-key={KEY}", "--region", "eu-west-1"], id="option-equals"
        ),
        pytest.param(
            ["check", "--host", "h", "--port", "587", "--username", "u", "--password", KEY],
            id="check-password",
        ),
    ],
)
def test_secret_on_the_command_line_is_refused_without_echoing_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:
    # GIVEN a key on argv (and a valid one on stdin), WHEN running
    code, out, err = run(argv, capsys, monkeypatch, KEY)
    # THEN exit 2 with one line saying why, and the key is printed nowhere
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert "shell history" in err
    assert KEY not in err


@pytest.mark.parametrize(
    ("argv", "stdin", "says"),
    [
        pytest.param(["--region", "eu-west"], KEY, "not an AWS region name", id="bad-region"),
        pytest.param(
            ["--region", "eu-west-1"], "   \n", "no secret access key given", id="empty-key"
        ),
        pytest.param([], KEY, "at least one --region", id="no-region"),
        pytest.param(
            ["--region", "eu-west-1"], f"{KEY}\n{KEY}\n", "more than one line", id="two-lines"
        ),
        pytest.param(["--regoin", "eu-west-1"], KEY, "--regoin", id="typo-named"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    stdin: str,
    says: str,
) -> None:
    code, out, err = run(["derive", *argv], capsys, monkeypatch, stdin)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert err.startswith("ses-smtp-rotator: error: ")
    assert says in err
    assert "Traceback" not in err
    assert KEY not in err


def test_missing_subcommand_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run([], capsys, monkeypatch, "")
    assert code == 2
    assert "required" in err


def test_help_exits_0(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run(["derive", "--help"], capsys, monkeypatch, "")
    assert code == 0
    assert "--legacy-v2" in out


def test_subcommands_come_from_one_table() -> None:
    parser = cli.build_parser()
    assert [c.name for c in cli.COMMANDS] == ["derive", "check", "export"]
    assert parser.parse_args(["check", "--secret-id", "s"]).run is cli.COMMANDS[1].run


def test_python_dash_m_runs_the_same_cli() -> None:
    # GIVEN the package run as a module with the key on stdin
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    env.pop("AWS_SECRET_ACCESS_KEY", None)
    done = subprocess.run(
        [sys.executable, "-m", "ses_smtp_rotator", "derive", "--region", "eu-west-1"],
        input=KEY,
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    # THEN the password, exit 0
    assert (done.returncode, done.stdout) == (0, derive_smtp_password(KEY, "eu-west-1") + "\n")
