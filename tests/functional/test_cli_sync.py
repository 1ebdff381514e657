"""``ses-smtp-rotator sync``: a file kept in step with the secret for daemons that read once."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest

from sandbox.faults import Fault, FaultKind, inject
from ses_smtp_rotator import _sync
from ses_smtp_rotator import client as smtp_client
from ses_smtp_rotator.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from tests import leakscan

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sandbox.world import World

BOUND = 20.0  # seconds: the most any wait below lasts (the suite's machine is slow and shared)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    smtp_client.clear_cache()
    yield
    smtp_client.clear_cache()


def postfix_line(world: World) -> str:
    value = world.value()
    return f"[localhost]:{world.ses.port} {value['username']}:{value['password']}\n"


def appender(log: Path) -> str:
    """An --on-change command that appends one line to ``log`` per run."""
    return f"echo ran >> {shlex.quote(str(log))}"


def runs(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def sync_argv(world: World, target: Path) -> list[str]:
    return ["sync", "--secret-id", world.secret_arn, "--format", "postfix", "--output", str(target)]


def test_once_rewrites_only_on_change_and_runs_on_change_once_per_change(
    world: World, tmp_path: Path
) -> None:
    # GIVEN a rotated secret, no file yet, and an --on-change command that counts its runs
    assert world.rotate().ok
    target, log = tmp_path / "sasl_passwd", tmp_path / "runs.log"
    argv = [*sync_argv(world, target), "--once", "--on-change", appender(log)]
    # WHEN sync runs once / THEN the file holds the current line, 0600, and the command ran once
    assert main(argv) == EXIT_OK
    assert target.read_text() == postfix_line(world)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert runs(log) == 1
    # WHEN it runs again with nothing changed / THEN the file is the same file, untouched, and the
    # command did not run
    before = target.stat()
    assert main(argv) == EXIT_OK
    after = target.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert runs(log) == 1
    # WHEN the secret rotates / THEN the next run replaces the file and runs the command once more
    assert world.rotate().ok
    assert main(argv) == EXIT_OK
    assert target.read_text() == postfix_line(world)
    assert target.stat().st_ino != before.st_ino
    assert runs(log) == 2
    assert main(argv) == EXIT_OK
    assert runs(log) == 2
    # AND nothing but the file and the log is left in the directory (no temporary, no marker)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.log", "sasl_passwd"]


OTHER_ID = 4242  # an owner and a group nobody on this machine has: only root can give them


@pytest.mark.parametrize("mode", [0o640, 0o600, 0o400])
def test_a_rewrite_keeps_owner_group_and_mode(world: World, tmp_path: Path, mode: int) -> None:
    # GIVEN postfix's sasl_passwd with an owner, a group and a mode of its own, holding an old line
    if os.geteuid() != 0:
        pytest.skip("giving a file another owner and group needs root (CI runs as root)")
    assert world.rotate().ok
    target = tmp_path / "sasl_passwd"
    target.write_text("[localhost]:587 AKIAOLD:old\n")
    os.chown(target, OTHER_ID, OTHER_ID + 1)
    target.chmod(mode)
    # WHEN sync brings it in step
    assert main([*sync_argv(world, target), "--once"]) == EXIT_OK
    # THEN it holds the current line with the same owner, group and mode
    written = target.stat()
    assert target.read_text() == postfix_line(world)
    assert (written.st_uid, written.st_gid, stat.S_IMODE(written.st_mode)) == (
        OTHER_ID,
        OTHER_ID + 1,
        mode,
    )


def test_loop_rewrites_on_change_and_keeps_the_file_through_a_read_failure(
    world: World, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the loop with a scripted clock: each wait is one tick, at which the test acts
    assert world.rotate().ok
    target, log = tmp_path / "sasl_passwd", tmp_path / "runs.log"
    client = boto3.client("secretsmanager", region_name=world.region)
    sync = _sync.Sync(
        secret_id=world.secret_arn,
        output=target,
        fmt="postfix",
        on_change=appender(log),
        client=client,
    )
    seen: list[tuple[str, int]] = []
    fault = Fault("GetSecretValue", FaultKind.BEFORE, nth=3)

    def tick(_interval: float) -> bool:
        # after each pass: what the file holds and how often the command ran
        seen.append((target.read_text(), runs(log)))
        if len(seen) == 2:
            assert world.rotate().ok  # the third pass sees a new key, and fails to read it
        return len(seen) == 5

    # WHEN the loop runs five passes: write, unchanged, read failure, rotated, unchanged
    with inject(client, fault):
        assert sync.loop(0.01, wait=tick) == EXIT_OK
    # THEN the file changed only on the fourth pass, and the command ran once per change
    first, second = seen[0][0], seen[3][0]
    assert second == postfix_line(world) != first
    assert seen == [(first, 1), (first, 1), (first, 1), (second, 2), (second, 2)]
    assert fault.fired == 1
    # AND the failed read was logged with what the file keeps and that it retries; nothing secret
    err = capfd.readouterr().err
    assert "cannot read secret" in err
    assert "keeps the credentials of key" in err
    assert "retrying in" in err
    assert leakscan.find_leaks([err], world.secret_material()) == []
    capfd.readouterr()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_ends_the_loop_with_exit_0_and_a_complete_file(
    make_world: Callable[..., World], tmp_path: Path, signum: signal.Signals
) -> None:
    # GIVEN sync looping in its own process against moto's server, with AWS variables that hold
    # no secret of the world, and the world's own secrets as what must never be printed
    world = make_world(moto_server=True)
    assert world.rotate().ok
    target = tmp_path / "sasl_passwd"
    program = shutil.which("ses-smtp-rotator", path=str(Path(sys.executable).parent))
    assert program is not None
    argv = [*sync_argv(world, target), "--interval", "0.2"]
    with subprocess.Popen(  # noqa: S603 - our own console script
        [program, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ),
    ) as process:
        try:
            # WHEN the file is written and the process gets the signal
            deadline = time.monotonic() + BOUND
            while not target.exists() and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert target.exists(), "sync wrote nothing in time"
            process.send_signal(signum)
            out, err = process.communicate(timeout=BOUND)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=BOUND)
    # THEN it exits 0, the file holds the whole line, nothing else is left, nothing secret printed
    assert process.returncode == EXIT_OK, err
    assert target.read_text() == postfix_line(world)
    assert [p.name for p in tmp_path.iterdir()] == ["sasl_passwd"]
    assert out == ""
    assert "stopped" in err
    assert leakscan.find_leaks([out, err], world.secret_material()) == []


def test_a_failed_on_change_exits_1_once_and_runs_again_next_time(
    world: World, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an --on-change command that fails
    assert world.rotate().ok
    target, log = tmp_path / "sasl_passwd", tmp_path / "runs.log"
    capfd.readouterr()
    # WHEN sync runs once / THEN the file is written, the exit code is 1 and the log says why
    assert main([*sync_argv(world, target), "--once", "--on-change", "exit 3"]) == EXIT_FAILED
    assert target.read_text() == postfix_line(world)
    assert "exited with status 3" in capfd.readouterr().err
    # WHEN the next run has nothing new to write but a command that works
    argv = [*sync_argv(world, target), "--once", "--on-change", appender(log)]
    assert main(argv) == EXIT_OK
    # THEN the command still ran (a change is followed by one successful run), and only once
    assert runs(log) == 1
    assert main(argv) == EXIT_OK
    assert runs(log) == 1


def test_on_change_gets_the_file_path_and_no_secret(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN secrets in the variables sync itself may read, and a command that dumps its env
    assert world.rotate().ok
    value = world.value()
    planted = {
        "SMTP_PASSWORD": value["password"],
        "SES_SECRET_ACCESS_KEY": value["secret_access_key"],
        "AWS_SECRET_ACCESS_KEY": "aws-secret-of-the-operator",
        "AWS_SESSION_TOKEN": "aws-session-token-of-the-operator",
    }
    for name, planted_value in planted.items():
        monkeypatch.setenv(name, planted_value)
    target, dump = tmp_path / "sasl_passwd", tmp_path / "env.txt"
    command = f"env > {shlex.quote(str(dump))}; echo $0 $# >> {shlex.quote(str(dump))}"
    # WHEN sync writes the file and runs the command
    assert main([*sync_argv(world, target), "--once", "--on-change", command]) == EXIT_OK
    # THEN the command saw the file's path, no secret variable, and no argument
    seen = dump.read_text()
    assert f"{_sync.FILE_ENV}={target}\n" in seen
    assert not [name for name in planted if f"{name}=" in seen]
    assert leakscan.find_leaks([seen], {*world.secret_material(), *planted.values()}) == []
    assert seen.endswith(f"{_sync.SHELL} 0\n")


@pytest.mark.parametrize(
    ("rotated", "secret_id", "message"),
    [
        pytest.param(False, None, "first rotation has not completed", id="bootstrap"),
        pytest.param(True, "no-such-secret", "ResourceNotFound", id="missing"),
    ],
)
def test_once_exits_1_when_the_secret_cannot_be_read_and_leaves_the_file(  # noqa: PLR0913 - a table row plus fixtures
    world: World,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    *,
    rotated: bool,
    secret_id: str | None,
    message: str,
) -> None:
    if rotated:
        assert world.rotate().ok
    target = tmp_path / "sasl_passwd"
    target.write_text("kept\n")
    capfd.readouterr()
    argv = ["sync", "--secret-id", secret_id or world.secret_arn, "--output", str(target)]
    assert main([*argv, "--once"]) == EXIT_FAILED
    out, err = capfd.readouterr()
    assert (out, target.read_text()) == ("", "kept\n")
    assert message in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--interval", "0"], "argument --interval: must be", id="interval-0"),
        pytest.param(["--interval", "-5"], "argument --interval: must be", id="interval-negative"),
        pytest.param(["--interval", "nan"], "argument --interval: must be", id="interval-nan"),
        pytest.param(["--interval", "inf"], "argument --interval: must be", id="interval-inf"),
        pytest.param(["--interval", "5m"], "argument --interval: must be", id="interval-unit"),
        pytest.param(["--interval", "86401"], "argument --interval: must be", id="interval-day"),
        pytest.param(["--on-change", " "], "--on-change is empty", id="empty-command"),
        pytest.param(["--format", "yaml"], "invalid choice", id="format"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    world: World, tmp_path: Path, capfd: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    capfd.readouterr()
    target = tmp_path / "sasl_passwd"
    assert main(["sync", "--secret-id", world.secret_arn, "--output", str(target), *args]) == 2
    out, err = capfd.readouterr()
    assert out == ""
    assert message in err
    assert len(err.splitlines()) == 1
    assert not target.exists()


@pytest.mark.parametrize(
    ("output", "message"),
    [
        pytest.param("-", "give --output FILE", id="stdout"),
        pytest.param("", "is a directory", id="a-directory"),
        pytest.param("missing/sasl_passwd", "does not exist", id="no-directory"),
    ],
)
def test_a_bad_output_exits_2(
    world: World, tmp_path: Path, capfd: pytest.CaptureFixture[str], output: str, message: str
) -> None:
    capfd.readouterr()
    where = output if output == "-" else str(tmp_path / output)
    code = main(["sync", "--secret-id", world.secret_arn, "--output", where, "--once"])
    assert code == EXIT_USAGE
    assert message in capfd.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_an_on_change_command_killed_by_a_signal_is_named_so(
    world: World, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an --on-change command that dies of SIGKILL (an OOM kill, say)
    assert world.rotate().ok
    capfd.readouterr()
    argv = [*sync_argv(world, tmp_path / "sasl_passwd"), "--once", "--on-change", "kill -9 $$"]
    # WHEN sync runs once / THEN it fails and says the command was killed, not "status -9"
    assert main(argv) == EXIT_FAILED
    assert "the --on-change command was killed by signal 9" in capfd.readouterr().err


@pytest.mark.parametrize("mode", [["--once"], []], ids=["once", "loop"])
def test_sync_without_powertools_says_which_extra_to_install(
    tmp_path: Path, mode: list[str]
) -> None:
    # GIVEN an installation with boto3 (the `aws` extra) but not Powertools (the `client` extra)
    code = (
        "import sys; sys.modules['aws_lambda_powertools'] = None; "
        "from ses_smtp_rotator.cli import main; "
        "sys.exit(main(sys.argv[1:]))"
    )
    argv = ["sync", "--secret-id", "x", "--region", "eu-west-1", "--output", str(tmp_path / "f")]
    argv += mode
    # WHEN sync runs, once or as a loop
    done = subprocess.run(  # noqa: S603 - this interpreter, our own module
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        timeout=BOUND,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")},
    )
    # THEN it exits 2 with one line naming the extra, not a traceback nor a loop of retries
    assert done.returncode == EXIT_USAGE
    assert "Traceback" not in done.stderr
    assert "pip install '.[client]'" in done.stderr
    assert "py3-none-any.whl[client]'" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_loop_runs_a_failed_on_change_again_at_each_pass_until_it_succeeds(
    world: World, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a command that counts its runs and fails until `ready` exists (postfix not up yet)
    assert world.rotate().ok
    target, log, ready = tmp_path / "sasl_passwd", tmp_path / "runs.log", tmp_path / "ready"
    command = f"{appender(log)}; test -e {shlex.quote(str(ready))}"
    sync = _sync.Sync(secret_id=world.secret_arn, output=target, fmt="postfix", on_change=command)
    seen: list[int] = []

    def tick(_interval: float) -> bool:
        seen.append(runs(log))
        if len(seen) == 2:
            ready.touch()
        return len(seen) == 4

    # WHEN the loop makes four passes with no rotation
    assert sync.loop(0.01, wait=tick) == EXIT_OK
    # THEN the command ran at each pass until it succeeded (the third), then no more
    assert seen == [1, 2, 3, 3]
    assert "the command runs again at the next pass" in capfd.readouterr().err
    assert not sync.pending.exists()


def test_once_cannot_write_the_file_exits_2(
    world: World, capfd: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an output in a directory no one may create files in, root included (procfs)
    if not Path("/proc/self").is_dir():
        pytest.skip("needs Linux's /proc")
    assert world.rotate().ok
    capfd.readouterr()
    # WHEN sync runs once / THEN it exits 2, saying it cannot write
    assert (
        main(["sync", "--secret-id", world.secret_arn, "--output", "/proc/sasl_passwd", "--once"])
        == 2
    )
    assert "cannot write /proc/sasl_passwd" in capfd.readouterr().err
