from __future__ import annotations

import io
import os
import re
import smtplib
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError
from rich.console import Console

from sandbox import demo
from sandbox.demo import app as demo_app
from sandbox.demo import run as demo_run
from sandbox.demo.progress import Progress
from sandbox.demo.summary import Summary, print_summary

if TYPE_CHECKING:
    from collections.abc import Callable

    from sandbox.world import World

ROOT = Path(__file__).resolve().parents[2]


class Collector:
    """The demo's observer: the secrets of its world, read before the world closes."""

    def __init__(self) -> None:
        self.material: set[str] = set()

    def __call__(self, world: World) -> None:
        self.material |= world.secret_material() | set(world.driver.rotation_tokens)


def _row(output: str, label: str) -> str:
    match = re.search(rf"{re.escape(label)}\s*│\s*([^│]+?)\s*│", output)
    assert match, f"no summary row {label!r} in:\n{output}"
    return match.group(1)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    collector = Collector()
    code = demo.main(list(argv), observer=collector)
    out, err = capsys.readouterr()
    leaked = sorted(m[:6] + "…" for m in collector.material if m in out or m in err)
    assert collector.material
    assert not leaked, f"secret material printed (prefixes): {leaked}"
    return code, out + err


def test_demo_rotates_while_the_app_sends_without_a_failure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN / WHEN the demo runs two rotations with a short propagation delay
    code, output = _run(capsys, "--delay", "0.5", "--rotations", "2")
    # THEN it passes, the app never failed, and the counts are those of two rotations
    assert code == 0, output
    ok, failed = (int(n) for n in _row(output, "sends ok / failed").split(" / "))
    assert ok > 0
    assert failed == 0
    assert _row(output, "rotations") == "2/2 completed (+ bootstrap)"
    # (three keys created: the bootstrap rotation's and one per rotation)
    assert _row(output, "keys created / deactivated / deleted") == "3 / 2 / 1"
    assert "refused: the new key has not reached SES yet" in output
    # At each finishSecret the app's cached old key is refused once, and a re-read heals it.
    assert _row(output, "app re-reads after a 535") == "2"
    assert _row(output, "AUTH 535: new key propagating / old key").endswith(" / 2")
    assert output.count("refused (535) → re-read the secret → sent with AKIA…") == 2
    assert "PASS" in output
    # Key ids only appear masked.
    assert not re.search(r"AKIA[A-Z0-9]{12,}", output)


@pytest.mark.parametrize("step", demo.STEP_FAULTS)
def test_fail_once_is_healed_by_the_retry_with_the_same_token(
    capsys: pytest.CaptureFixture[str], step: str
) -> None:
    # GIVEN / WHEN one AWS call of the step fails in the first rotation
    code, output = _run(capsys, "--delay", "0", "--rotations", "1", "--fail-once", step)
    # THEN the service's retry shows as attempt 2 and still nothing fails for the app
    assert code == 0, output
    assert "fault armed" in output
    assert "attempt 2" in output
    assert _row(output, "sends ok / failed").endswith(" / 0")


def test_verbose_shows_the_functions_logs_and_a_live_line_in_a_terminal() -> None:
    # GIVEN a terminal console
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    # WHEN the demo runs with --verbose
    code = demo.main(
        ["--delay", "0", "--rotations", "1", "--verbose", "--interval", "0.05"], console=console
    )
    # THEN the function's JSON log lines are shown
    assert code == 0
    assert '"service":"ses-smtp-rotation"' in buffer.getvalue().replace(" ", "")


def test_a_failing_rotation_is_reported(make_world: Callable[..., World]) -> None:
    # GIVEN an SMTP server that answers 421 to every AUTH of the rotation
    world = make_world()
    world.ses.fail_next("421", count=3)
    buffer = io.StringIO()
    console = Console(file=buffer, width=120)
    # WHEN the demo rotates
    with Progress(console, world) as progress:
        world.driver.on_step = progress
        report = demo_run._rotate(world, progress, console, number=1)
    # THEN the rotation failed after three attempts, each failure shown
    assert not report.ok
    assert report.attempts == 3
    assert report.problems[0].startswith("rotation failed: ")
    assert "✗ testSecret" in buffer.getvalue()
    assert "retries it with the same token" in buffer.getvalue()


def test_a_failed_summary_says_fail() -> None:
    buffer = io.StringIO()
    summary = Summary(planned=3, notes=["the app could not send before the rotations"])
    print_summary(Console(file=buffer, width=120), summary)
    assert not summary.passed
    assert "FAIL" in buffer.getvalue()


def test_app_without_credentials_counts_a_failed_send(world: World) -> None:
    # GIVEN the bootstrap secret (no rotation yet)
    lines: list[str] = []
    app = demo_app.MailApp(secret_id=world.secret_arn, region=world.region, on_event=lines.append)
    # WHEN the app sends
    # THEN the send fails with a message that says why
    assert not app.send_one()
    assert app.stats.failed == 1
    assert "no SMTP credentials yet" in lines[0]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param(smtplib.SMTPAuthenticationError(535, b"x"), "SMTP 535", id="smtp-reply"),
        pytest.param(
            ClientError({"Error": {"Code": "AccessDenied"}}, "GetSecretValue"),
            "AWS AccessDenied",
            id="aws",
        ),
        pytest.param(ConnectionRefusedError(), "ConnectionRefusedError", id="network"),
    ],
)
def test_send_errors_are_described_without_replies(error: BaseException, expected: str) -> None:
    assert demo_app._describe(error).startswith(expected)


def test_ctrl_c_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_args: object, **_kwargs: object) -> Summary:
        raise KeyboardInterrupt

    monkeypatch.setattr(demo_run, "run", interrupted)
    assert demo.main([], console=Console(file=io.StringIO())) == demo.EXIT_INTERRUPTED


@pytest.mark.parametrize("argv", [["--delay", "-1"], ["--rotations", "0"], ["--fail-once", "x"]])
def test_bad_flags_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        demo.build_parser().parse_args(argv)
    assert exit_info.value.code == 2


def test_mask_shows_only_the_ends() -> None:
    assert demo_app.mask("AKIAIOSFODNN7EXAMPLE") == "AKIA…MPLE"
    assert demo_app.mask(None) == "(none)"


def test_piped_output_keeps_each_line_whole() -> None:
    # GIVEN the demo's output piped (not a terminal), as in `make demo | tee demo.log`
    env = {k: v for k, v in os.environ.items() if k not in {"COLUMNS", "LINES"}}
    done = subprocess.run(
        [sys.executable, "-m", "sandbox.demo", "--delay", "0", "--rotations", "1"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # THEN the secret's bootstrap value, longer than 80 columns, is printed on one line
    (secret_line,) = [line for line in done.stdout.splitlines() if line.startswith("  secret ")]
    assert secret_line.rstrip().endswith("}")
    assert "region=" in secret_line
    assert "port=" in secret_line
    # AND no line ends inside a word that the next line continues
    assert not re.search(r"[a-z]\n[a-z]", done.stdout)
