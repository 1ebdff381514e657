"""``ses-smtp-rotator rotate [--wait]`` against the local world.

``RotateSecret`` goes to moto, which hands the rotation to the local driver on a thread of its own
(:mod:`sandbox.rotation_service`), as Secrets Manager invokes the function after answering; the
function's lines land in moto's log group, where ``--wait`` reads them. Each failure is injected
the way the rotation tests inject it, at the step it strikes: two keys made by hand (IAM's limit)
for createSecret, the pending key deleted before setSecret, SES refusing the new key for
testSecret, a fault on ``UpdateSecretVersionStage`` for finishSecret. A driver held at a step
plays a rotation that never ends. Every wait is bounded: ``--timeout`` and the joins.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Final

import pytest

from rotation_handler import app
from sandbox.calls import count_calls
from sandbox.faults import Fault, FaultKind, inject
from ses_smtp_rotator import _rotate
from ses_smtp_rotator.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from tests import leakscan

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sandbox.world import World

Rotate = Callable[..., tuple[int, str]]  # rotate(world, *args) -> (exit code, output)
WAIT: Final = ("--wait", "--timeout", "60")
JOIN_SECONDS: Final = 30.0
HOLD_SECONDS: Final = 20.0  # a held step waits at most this long for the test to release it


@pytest.fixture
def rotate(capfd: pytest.CaptureFixture[str]) -> Rotate:
    """Run ``rotate`` on a world's secret; return the exit code and its stdout+stderr.

    The metrics the function prints (Lambda sends stdout to the log too) are left out; what was
    printed is scanned here for every secret the world holds, and after the driver's runs ended.
    """

    def run(world: World, *args: str) -> tuple[int, str]:
        before = capfd.readouterr()
        code = main(["rotate", "--secret-id", world.secret_arn, *args])
        out, err = capfd.readouterr()
        texts = [before.out, before.err, out, err]
        assert leakscan.find_leaks(texts, world.secret_material()) == []
        shown = [line for line in _without_metrics(out).splitlines() if line]
        return code, "\n".join([*shown, err])

    return run


def _without_metrics(text: str) -> str:
    """Cut the function's metric objects (EMF JSON) out of ``text``, wherever they start.

    The background run prints them from another thread, so one can land in the middle of a line
    the command printed (seen: a metric object and "started: version ..." on one line).
    """
    decoder = json.JSONDecoder()
    kept: list[str] = []
    rest = text
    while (start := rest.find('{"_aws"')) >= 0:
        kept.append(rest[:start])
        _, length = decoder.raw_decode(rest[start:])
        rest = rest[start + length :]
    return "".join([*kept, rest])


def finished(world: World) -> None:
    """Wait (bounded) until RotateSecret's runs ended."""
    assert world.service is not None
    assert world.service.join(JOIN_SECONDS)


def current_version(world: World) -> str:
    return next(v for v, stages in world.driver.stages().items() if "AWSCURRENT" in stages)


def token_of(output: str) -> str:
    (line,) = [line for line in output.splitlines() if "started: version " in line]
    return line.split("started: version ")[1].split()[0]


@contextlib.contextmanager
def held_at(world: World, held_step: str) -> Iterator[threading.Event]:
    """Hold the driver before ``held_step`` until the event is set (or HOLD_SECONDS pass)."""
    release = threading.Event()

    def hold(step: str, _token: str, record: object) -> None:
        if step == held_step and record is None:
            release.wait(HOLD_SECONDS)

    world.driver.on_step = hold
    try:
        yield release
    finally:
        release.set()
        finished(world)


def test_rotate_wait_follows_each_step_to_awscurrent(
    make_world: Callable[..., World], rotate: Rotate
) -> None:
    # GIVEN a rotated secret whose old key is deactivated at once, and SES that refuses a new
    # key for a moment (it propagates)
    world = make_world(function_env={"OLD_KEY_ACTION": "deactivate"}, propagation_delay=1.5)
    assert world.rotate().ok
    old_key = world.value()["access_key_id"]
    # WHEN rotate --wait runs
    code, out = rotate(world, *WAIT)
    finished(world)
    # THEN it exits 0 with the token's version AWSCURRENT, having shown every step in order
    assert code == EXIT_OK, out
    token = token_of(out)
    assert current_version(world) == token
    order = [
        f"AWSPENDING is on version {token}",
        "createSecret: new key",
        "✓ createSecret",
        "✓ setSecret",
        "testSecret: SMTP login with the new key: success after",
        "✓ testSecret",
        "finishSecret: old key",
        "✓ finishSecret",
        "rotation finished in",
    ]
    positions = [out.find(text) for text in order]
    assert -1 not in positions, out
    assert positions == sorted(positions), out
    # AND the SMTP test's attempts: the first were refused while the key propagated
    (smtp_line,) = [line for line in out.splitlines() if "SMTP login with the new key" in line]
    attempts = int(smtp_line.split("after ")[1].split()[0])
    assert attempts == len([a for a in world.ses.auth_attempts if a.access_key_id != old_key])
    assert attempts > 1
    # each one shown as it came, the last one accepted
    shown = [line for line in out.splitlines() if "SMTP login attempt" in line]
    assert len(shown) == attempts
    assert "attempt 1 with the new key: auth-rejected" in shown[0]
    assert shown[-1].endswith(f"attempt {attempts} with the new key: success")
    # AND the old key's fate, its id masked (no key id in full anywhere)
    assert world.access_keys()[old_key] == "Inactive"
    assert f"old key {_rotate.masked(old_key)} deactivated" in out.splitlines()[-1]
    for key_id in world.access_keys():
        assert key_id not in out


def test_rotate_without_wait_returns_at_once(world: World, rotate: Rotate) -> None:
    # GIVEN a driver held before createSecret (the function has not run yet)
    with held_at(world, "createSecret"):
        # WHEN rotate runs without --wait
        code, out = rotate(world)
        # THEN it exits 0 with the token, while the new version is still pending and empty
        assert code == EXIT_OK, out
        token = token_of(out)
        assert world.driver.stages()[token] == ["AWSPENDING"]
        assert world.driver.history == []
    # AND the rotation it started goes on to the end once released
    assert current_version(world) == token


def test_rotate_json_reports_the_outcome(world: World, rotate: Rotate) -> None:
    code, out = rotate(world, *WAIT, "--json")
    finished(world)
    assert code == EXIT_OK
    report = json.loads(out)
    assert report["result"] == "succeeded"
    assert report["version_id"] == current_version(world)
    assert report["log"] == {"group": "/aws/lambda/ses-smtp-rotation", "state": "read"}
    assert [e["step"] for e in report["events"] if e["text"].startswith("✓ ")][:4] == [
        "createSecret",
        "setSecret",
        "testSecret",
        "finishSecret",
    ]


def failure_line(out: str) -> str:
    (line,) = [line for line in out.splitlines() if " failed" in line and "✗" in line]
    return line


def test_create_secret_failure_names_the_step_and_the_foreign_key(
    world: World, rotate: Rotate
) -> None:
    # GIVEN a rotated secret, and a second key made by hand: IAM's two keys are taken
    assert world.rotate().ok
    foreign = world.iam.create_access_key(UserName=world.user_name)["AccessKey"]["AccessKeyId"]
    # WHEN rotate --wait runs / THEN it exits 1 naming createSecret and why, the key masked
    code, out = rotate(world, *WAIT)
    finished(world)
    assert code == EXIT_FAILED, out
    line = failure_line(out)
    assert "✗ createSecret failed: " in line
    assert "already has 2 access keys" in line
    assert _rotate.masked(foreign) in line
    assert foreign not in out
    assert "ses-smtp-rotator status --secret-id" in out


def test_set_secret_failure_names_the_step_and_its_message(world: World, rotate: Rotate) -> None:
    # GIVEN a pending key someone deletes between createSecret and setSecret
    def delete_pending_key(step: str, _token: str, record: object) -> None:
        if step == "setSecret" and record is None:
            key_id = world.value("AWSPENDING")["access_key_id"]
            world.iam.delete_access_key(UserName=world.user_name, AccessKeyId=key_id)

    world.driver.on_step = delete_pending_key
    # WHEN rotate --wait runs / THEN it exits 1 naming setSecret and the function's message
    code, out = rotate(world, *WAIT)
    finished(world)
    assert code == EXIT_FAILED, out
    line = failure_line(out)
    assert "✗ setSecret failed: the pending access key AKIA…" in line
    assert "no longer exists: cancel this rotation" in line
    assert "✓ createSecret" in out


def test_test_secret_failure_shows_the_attempts_and_the_message(
    make_world: Callable[..., World], rotate: Rotate
) -> None:
    # GIVEN SES that keeps refusing the new key longer than the function's SMTP test waits
    world = make_world(propagation_delay=60.0, function_env={"SMTP_TEST_TIMEOUT_SECONDS": "1"})
    # WHEN rotate --wait runs / THEN it exits 1 naming testSecret, after its attempts
    code, out = rotate(world, *WAIT)
    finished(world)
    assert code == EXIT_FAILED, out
    assert "testSecret: SMTP login with the new key: auth-rejected after" in out
    line = failure_line(out)
    assert "✗ testSecret failed: SMTP login with the pending credentials was still rejected" in line
    assert "✓ setSecret" in out
    assert "AWSCURRENT" not in world.driver.stages()[token_of(out)]


def test_finish_secret_failure_names_the_step(world: World, rotate: Rotate) -> None:
    # GIVEN the function's UpdateSecretVersionStage fails before it reaches the service
    function_sm = app.runtime().sm
    with inject(function_sm, Fault("UpdateSecretVersionStage", FaultKind.BEFORE)) as fault:
        # WHEN rotate --wait runs
        code, out = rotate(world, *WAIT)
        finished(world)
    # THEN it exits 1 naming finishSecret and the error; the new version is not AWSCURRENT
    assert fault.fired == 1
    assert code == EXIT_FAILED, out
    line = failure_line(out)
    assert "✗ finishSecret failed: " in line
    assert "injected fault before UpdateSecretVersionStage" in line
    assert "✓ testSecret" in out
    assert "AWSCURRENT" not in world.driver.stages()[token_of(out)]


def test_a_rotation_that_never_ends_times_out(world: World, rotate: Rotate) -> None:
    # GIVEN a driver that stops before testSecret / WHEN rotate --wait runs with a 3 s time-out
    with held_at(world, "testSecret"):
        code, out = rotate(world, "--wait", "--timeout", "3")
        # THEN it exits 1, naming the last step seen and where to look next
        assert code == EXIT_FAILED, out
        assert "✗ timed out: no end after 3 s; last step seen: setSecret done" in out
        assert "ses-smtp-rotator status --secret-id" in out
        assert "runbook" in out


def test_a_cancelled_rotation_exits_1(world: World, rotate: Rotate) -> None:
    # GIVEN a rotation that someone cancels as the runbook says, before setSecret runs
    release = threading.Event()

    def cancel(step: str, token: str, record: object) -> None:
        if step == "setSecret" and record is None:
            world.cancel_rotation(token)
            release.wait(HOLD_SECONDS)  # the run goes on only once the test is done

    world.driver.on_step = cancel
    try:
        # WHEN rotate --wait follows it
        code, out = rotate(world, *WAIT)
    finally:
        release.set()
        finished(world)
    # THEN it sees the version lose AWSPENDING and exits 1
    assert code == EXIT_FAILED, out
    assert "lost AWSPENDING without becoming AWSCURRENT: the rotation was cancelled" in out


class _DeniedLogs(BaseHTTPRequestHandler):
    """CloudWatch Logs for a caller without logs:FilterLogEvents: AccessDenied, in its JSON."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"__type": "AccessDeniedException", "message": "not authorized"})
        self.send_response(400)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:  # noqa: ANN401 - http.server's signature
        pass


@pytest.fixture
def denied_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Send the CLI's CloudWatch Logs calls to a local server that refuses them."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DeniedLogs)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", f"http://{host!s}:{port}")
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(JOIN_SECONDS)


@pytest.mark.usefixtures("denied_logs")
def test_without_log_access_it_follows_the_labels(world: World, rotate: Rotate) -> None:
    # GIVEN a caller who may not read the function's log, and a driver held before testSecret
    # until the caller has asked GetSecretValue whether createSecret stored the new version
    release = threading.Event()
    with count_calls(account_id=world.driver.account_id, region=world.region) as calls:

        def hold(step: str, _token: str, record: object) -> None:
            if step == "testSecret" and record is None:
                seen = calls["SecretsManager.GetSecretValue"]  # the function waits: not its calls
                deadline = time.monotonic() + HOLD_SECONDS
                while (
                    calls["SecretsManager.GetSecretValue"] == seen and time.monotonic() < deadline
                ):
                    release.wait(0.05)

        world.driver.on_step = hold
        # WHEN rotate --wait runs
        code, out = rotate(world, *WAIT)
        finished(world)
    # THEN it says so once and follows the labels to the end
    assert code == EXIT_OK, out
    assert out.count("no log access (AccessDeniedException") == 1
    assert "following labels only" in out
    assert f"✓ AWSCURRENT is now version {token_of(out)}" in out
    assert "✓ createSecret: the new version holds a value" in out
    assert "old key's fate is in the function's log only" in out


def test_a_log_group_not_found_falls_back_to_the_labels(world: World, rotate: Rotate) -> None:
    code, out = rotate(world, *WAIT, "--log-group", "/aws/lambda/not-this-one")
    finished(world)
    assert code == EXIT_OK, out
    assert out.count("log group /aws/lambda/not-this-one not found") == 1
    assert f"✓ AWSCURRENT is now version {token_of(out)}" in out


def test_a_failure_without_log_access_is_seen_as_a_time_out(world: World, rotate: Rotate) -> None:
    # GIVEN a rotation that fails at createSecret, followed with a log group it cannot find
    assert world.rotate().ok
    world.iam.create_access_key(UserName=world.user_name)
    code, out = rotate(world, "--wait", "--timeout", "2", "--log-group", "/aws/lambda/nope")
    finished(world)
    # THEN only the labels speak: the rotation never ends within the time-out
    assert code == EXIT_FAILED, out
    assert "✗ timed out: no end after 2 s; last step seen: AWSPENDING staged" in out


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--wait", "--timeout", "0"], id="timeout-0"),
        pytest.param(["--wait", "--timeout", "nan"], id="timeout-nan"),
        pytest.param(["--timeout", "5"], id="timeout-without-wait"),
        pytest.param(["--log-group", "/aws/lambda/x"], id="log-group-without-wait"),
        pytest.param(["--region", "mars-1"], id="bad-region"),
    ],
)
def test_bad_usage_exits_2_and_starts_nothing(
    world: World, rotate: Rotate, args: list[str]
) -> None:
    before = world.driver.stages()
    code, out = rotate(world, *args)
    assert code == EXIT_USAGE, out
    assert world.driver.stages() == before


def test_no_secret_id_exits_2(capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["rotate", "--wait"]) == EXIT_USAGE
    assert "--secret-id" in capfd.readouterr().err


def test_a_rotation_in_progress_is_refused_with_exit_1(world: World, rotate: Rotate) -> None:
    # GIVEN a rotation held before createSecret / WHEN another rotate runs
    with held_at(world, "createSecret"):
        first, _ = rotate(world)
        code, out = rotate(world, *WAIT)
    # THEN the second is refused (exit 1) and says where to look
    assert first == EXIT_OK
    assert code == EXIT_FAILED, out
    assert "cannot start a rotation" in out
    assert "InvalidRequestException" in out
    assert "rotation is probably in progress" in out


def test_the_function_logs_its_step_failure_with_the_token(world: World) -> None:
    # GIVEN a rotation that fails at createSecret (IAM's two keys taken by hand)
    assert world.rotate().ok
    world.iam.create_access_key(UserName=world.user_name)
    token = str(uuid.uuid4())
    # WHEN RotateSecret runs it as the service does
    world.sm.rotate_secret(SecretId=world.secret_arn, ClientRequestToken=token)
    finished(world)
    # THEN the function's log group holds one ERROR line naming the step, the token and the
    # exception's first line
    assert world.service is not None
    lines = [json.loads(line) for line in world.service.log_lines]
    (error,) = [line for line in lines if line.get("level") == "ERROR"]  # metrics: no level
    failure = world.driver.history[-1].error
    assert failure is not None
    assert error["message"] == "step failed"
    assert (error["step"], error["version_id"]) == ("createSecret", token)
    assert error["error"] == str(failure).splitlines()[0]


def test_rotate_secret_again_with_the_same_token_starts_nothing_new(world: World) -> None:
    # GIVEN a rotation held before createSecret
    token = str(uuid.uuid4())
    with held_at(world, "createSecret"):
        first = world.sm.rotate_secret(SecretId=world.secret_arn, ClientRequestToken=token)
        # WHEN the same call comes again (botocore's retry after a lost answer)
        again = world.sm.rotate_secret(SecretId=world.secret_arn, ClientRequestToken=token)
        # THEN it names the same version, and no second version or run was started
        assert first["VersionId"] == again["VersionId"] == token
        assert [v for v, s in world.driver.stages().items() if "AWSPENDING" in s] == [token]
        assert world.service is not None
        assert len(world.service.threads) == 1
    # AND the one rotation finishes
    assert current_version(world) == token


def test_rotate_without_a_region_exits_2(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN no region anywhere / WHEN rotate runs on a secret's name
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    # THEN one line says how to give one (exit 2)
    assert main(["rotate", "--secret-id", "s"]) == EXIT_USAGE
    err = capfd.readouterr().err
    assert err.count("\n") == 1
    assert "no AWS region: give --region" in err


FLEET_ACCOUNT: Final = "210987654321"


def test_a_function_in_another_account_is_followed_by_the_labels_alone_and_says_why(
    world: World, rotate: Rotate
) -> None:
    # GIVEN a secret whose rotation function is in another account (a fleet's function rotating
    # this member account's secret): its log group is there, not in the caller's account
    from sandbox import rotation_service  # noqa: PLC0415 - imports moto

    assert world.rotate().ok
    fleet_function = f"arn:aws:lambda:{world.region}:{FLEET_ACCOUNT}:function:fleet-ses-smtp"
    world.driver.enable_rotation(lambda_arn=fleet_function)
    service = rotation_service.serve(world.driver)
    assert service.logs_account == FLEET_ACCOUNT
    try:
        # WHEN rotate --wait follows a rotation
        code, out = rotate(world, *WAIT, "--json")
        assert service.join(JOIN_SECONDS)
    finally:
        rotation_service.withdraw(service)
    # THEN it ends when the new version is AWSCURRENT, having said at once why it reads no log,
    # and it never asked for the log (the function's lines are in the fleet's account)
    assert code == EXIT_OK, out
    report = json.loads(out[: out.rindex("}") + 1])
    assert report["result"] == "succeeded"
    assert report["log"] == {"group": None, "state": "other-account"}
    first = report["events"][1]["text"]
    assert first.startswith(f"the rotation function runs in account {FLEET_ACCOUNT}, not the")
    assert "the labels alone are followed" in first
    assert current_version(world) == report["version_id"]
    assert not any("log group" in e["text"] and "not found" in e["text"] for e in report["events"])
    # AND the function's lines went to its own account's log group, where the CLI did not look
    from moto.logs.models import logs_backends  # noqa: PLC0415 - moto's state

    groups = logs_backends[FLEET_ACCOUNT][world.region].groups
    assert service.log_group in groups
    assert service.log_lines
