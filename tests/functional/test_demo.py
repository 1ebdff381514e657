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
from sandbox.demo import rotation as demo_rotation
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


def _figures(output: str, label: str) -> list[int]:
    return [int(n) for n in _row(output, label).split(" / ")]


def assert_summary_agrees_with_the_lines(output: str) -> None:
    """Every figure of the summary is the count of the lines above it that show the same events."""
    log, rule, _ = output.partition("─ summary ─")
    assert rule, output

    def lines(pattern: str) -> int:
        return len(re.findall(pattern, log, flags=re.MULTILINE))

    masked = r"AKIA…\w{4}"
    _, app_failed, app_535 = _figures(output, "app (client helper): sent ok / failed / 535s")
    assert app_535 == lines(rf"^\s*app: {masked} refused \(535\) → re-read the secret$")
    assert app_failed == lines(r"^\s*app: send \d+ FAILED")
    _, daemon_failed = _figures(output, "read-once daemon: sent ok / failed")
    assert daemon_failed == lines(r"^\s*read-once daemon: send \d+ FAILED")
    _, synced_failed = _figures(output, "synced daemon (sync loop): sent ok / failed")
    assert synced_failed == lines(r"^\s*synced daemon: send \d+ FAILED")
    assert lines(r"^\s*synced daemon: .*next start") == 0  # its own words, not the other's
    refused_535 = r"send \d+ FAILED: SMTP 535"
    propagating, old_key = _figures(output, "AUTH 535: new key propagating / old key")
    assert old_key == app_535 + lines(rf"^\s*(?:read-once|synced) daemon: {refused_535}")
    assert propagating == lines(r"^\s*AUTH .*535 refused: the new key has not reached SES yet")
    _, test_auth = _figures(output, "AUTH attempts: all / testSecret")
    assert test_auth == lines(rf"^\s*AUTH {masked}  ")
    swept = lines(r"^\s*sweep: grace period over")
    assert int(_row(output, "old keys retired by the sweep")) == swept
    created, deactivated, deleted = _figures(output, "keys created / deactivated / deleted")
    assert created == lines(r"^\s*✓ createSecret .* staged as AWSPENDING$")
    rows = re.findall(
        r"^│\s*(bootstrap|\d+)\s*│[^│]*│\s*\d+\s*│\s*(\d+)\s*│\s*(\d+)\s*│", output, re.MULTILINE
    )
    assert deactivated == sum(int(r[1]) for r in rows) + lines(r"^\s*sweep: .* deactivated$")
    assert deleted == sum(int(r[2]) for r in rows) + lines(r"^\s*sweep: .* deleted$")


def test_demo_rotates_while_the_app_sends_without_a_failure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN / WHEN the demo runs two rotations with a short propagation delay (grace period 2s)
    code, output = _run(capsys, "--delay", "0.5", "--rotations", "2")
    # THEN it passes: the three consumers sent through every rotation without a failure
    assert code == 0, output
    ok, failed, refused = (
        int(n) for n in _row(output, "app (client helper): sent ok / failed / 535s").split(" / ")
    )
    assert (ok > 0, failed) == (True, 0)
    daemon_ok, daemon_failed = (
        int(n) for n in _row(output, "read-once daemon: sent ok / failed").split(" / ")
    )
    assert (daemon_ok > 0, daemon_failed) == (True, 0)
    synced_ok, synced_failed = (
        int(n) for n in _row(output, "synced daemon (sync loop): sent ok / failed").split(" / ")
    )
    assert (synced_ok > 0, synced_failed) == (True, 0)
    assert _row(output, "rotations") == "2/2 completed (+ bootstrap)"
    # (three keys created: the bootstrap rotation's and one per rotation)
    assert _row(output, "keys created / deactivated / deleted").startswith("3 / ")
    assert "refused: the new key has not reached SES yet" in output
    # With the grace period the app moved to the new key through its cache, never through a 535,
    # and the sweep, not finishSecret, retired the old keys
    assert refused == 0
    assert _row(output, "AUTH 535: new key propagating / old key").endswith(" / 0")
    assert int(_row(output, "old keys retired by the sweep")) >= 1
    assert "sweep: grace period over" in output
    assert "PASS" in output
    # AND every figure of the summary is counted from the events the lines above it show
    assert_summary_agrees_with_the_lines(output)
    # Key ids only appear masked.
    assert not re.search(r"AKIA[A-Z0-9]{12,}", output)


def test_without_a_grace_period_the_read_once_daemon_fails_and_the_demo_says_why(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN / WHEN the demo runs with --grace 0 (the old key retired at finishSecret) and a
    # daemon that reads the secret only every 2 seconds
    code, output = _run(
        capsys, "--delay", "0.5", "--rotations", "2", "--grace", "0", "--restart-every", "2"
    )
    # THEN the daemon failed between a rotation and its next start, and the demo says why
    assert code == 1, output
    assert int(_row(output, "read-once daemon: sent ok / failed").split(" / ")[1]) > 0
    assert "the old key stopped working before its next start" in output
    # AND the app using the client helper healed each refusal with a re-read: no failed send
    _, failed, refused = (
        int(n) for n in _row(output, "app (client helper): sent ok / failed / 535s").split(" / ")
    )
    assert (failed, refused > 0) == (0, True)
    assert "FAIL" in output
    # AND every figure of the summary is counted from the events the lines above it show
    assert_summary_agrees_with_the_lines(output)


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
    assert _row(output, "app (client helper): sent ok / failed / 535s").split(" / ")[1] == "0"
    assert _row(output, "read-once daemon: sent ok / failed").endswith(" / 0")


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
        report = demo_rotation.rotate(world, progress, console, number=1)
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
    assert demo_app.describe(error).startswith(expected)


def test_ctrl_c_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_args: object, **_kwargs: object) -> Summary:
        raise KeyboardInterrupt

    monkeypatch.setattr(demo_run, "run", interrupted)
    assert demo.main([], console=Console(file=io.StringIO())) == demo.EXIT_INTERRUPTED


@pytest.mark.parametrize(
    "argv",
    [
        ["--delay", "-1"],
        ["--rotations", "0"],
        ["--fail-once", "x"],
        ["--grace", "24h"],
        ["--grace", "2"],
        ["--restart-every", "-1"],
    ],
)
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
