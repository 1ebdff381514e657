"""``ses-smtp-rotator derive``: keys from stdin or the environment, never argv; exit codes."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from ses_smtp_rotator import _console, cli
from ses_smtp_rotator.password import derive_legacy_v2_password, derive_smtp_password

KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SES_SECRET_ACCESS_KEY", raising=False)


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
    # GIVEN no stdin input and the key in SES_SECRET_ACCESS_KEY (check's variable too)
    monkeypatch.setenv("SES_SECRET_ACCESS_KEY", KEY)
    code, out, _ = run(["derive", "--region", "eu-west-1"], capsys, monkeypatch, "")
    assert (code, out) == (0, derive_smtp_password(KEY, "eu-west-1") + "\n")


def test_derive_never_reads_the_users_own_aws_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN only AWS_SECRET_ACCESS_KEY: the user's own AWS credentials, not an SMTP user's key
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", KEY)
    # WHEN deriving / THEN it is not used: exit 2, naming the variable to set instead
    code, out, err = run(["derive", "--region", "eu-west-1"], capsys, monkeypatch, "")
    assert (code, out) == (2, "")
    assert "SES_SECRET_ACCESS_KEY" in err
    assert "AWS_SECRET_ACCESS_KEY is not read" in err
    assert KEY not in err


def test_every_command_reads_the_secret_key_from_one_variable() -> None:
    # THEN derive's key and check's key (for its diagnosis) come from the same project variable
    assert cli.COMMANDS[0].secret_env == _console.SECRET_ACCESS_KEY_ENV == "SES_SECRET_ACCESS_KEY"
    source = (ROOT / "src/ses_smtp_rotator/_check.py").read_text()
    assert "optional_secret(_console.SECRET_ACCESS_KEY_ENV)" in source
    assert "AWS_SECRET_ACCESS_KEY" not in source


PROMPT = b"secret access key (not echoed): "


def test_a_terminal_is_asked_for_the_key_without_echo(tmp_path: Path) -> None:
    # GIVEN derive run with a terminal (a pseudo-terminal) as stdin and no variable set
    controller, terminal = pty.openpty()
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "ses_smtp_rotator", "derive", "--region", "eu-west-1"],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,  # no controlling terminal: getpass uses stdin, as over ssh -T
    )
    os.close(terminal)
    try:
        # WHEN the prompt appears (getpass turns echo off first, discarding early typing) and
        # the user types the key
        assert process.stderr is not None
        prompt = _read_until(process.stderr.fileno(), PROMPT, seconds=10)
        os.write(controller, KEY.encode() + b"\n")
        out, _ = process.communicate(timeout=10)
        echoed = _read_until(controller, b"\n", seconds=0.5)
    finally:
        process.kill()
        process.wait(timeout=10)
        os.close(controller)
    # THEN it derives the password, the prompt went to stderr, and the key was not echoed
    assert PROMPT in prompt
    assert (process.returncode, out.decode()) == (0, derive_smtp_password(KEY, "eu-west-1") + "\n")
    assert KEY.encode() not in echoed


def _read_until(fd: int, wanted: bytes, *, seconds: float) -> bytes:
    """Read ``fd`` until ``wanted`` shows up or ``seconds`` pass; return what was read."""
    deadline = time.monotonic() + seconds
    seen = b""
    while wanted not in seen and (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the terminal closed
            break
        if not chunk:
            break
        seen += chunk
    return seen


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
    # WHEN the command runs with no subcommand / THEN it prints its usage and commands (exit 2)
    code, _, err = run([], capsys, monkeypatch, "")
    assert code == 2
    assert err.startswith("usage: ses-smtp-rotator")
    assert all(name in err for name in ("derive", "check", "sync", "status", "rotate"))


def test_help_exits_0(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run(["derive", "--help"], capsys, monkeypatch, "")
    assert code == 0
    assert "--legacy-v2" in out


def test_subcommands_come_from_one_table() -> None:
    parser = cli.build_parser()
    assert [c.name for c in cli.COMMANDS] == [
        "derive",
        "check",
        "export",
        "sync",
        "status",
        "rotate",
    ]
    assert parser.parse_args(["check", "--secret-id", "s"]).run is cli.COMMANDS[1].run


def test_python_dash_m_runs_the_same_cli() -> None:
    # GIVEN the package run as a module with the key on stdin
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    env.pop("SES_SECRET_ACCESS_KEY", None)
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
