"""``ses-smtp-rotator status``: a secret's rotation state, and a fix that clears each problem.

Every problem is checked end to end: ``status`` reports it (exit 1) with the runbook's commands,
the test runs those commands as printed (``aws ...`` lines through boto3, as
``tests/functional/test_readme.py`` does), and ``status`` then reports it no more. Moto cannot
invoke a rotation function (no Docker), so for ``aws secretsmanager rotate-secret`` the local
driver plays RotateSecret and the service's invocation of the four steps.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from sandbox.aws_cli import aws
from ses_smtp_rotator.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from ses_smtp_rotator.contract import Retirement
from tests import leakscan

if TYPE_CHECKING:
    from sandbox.world import World

Status = Callable[..., tuple[int, str]]  # status(world, *args) -> (exit code, output)


@pytest.fixture
def status(capfd: pytest.CaptureFixture[str]) -> Status:
    """Run ``status`` for a world's secret; return the exit code and stdout+stderr.

    What it printed is checked here for every secret the world holds (the leak scan of the
    ``world`` fixture no longer sees output a test read).
    """

    def run(world: World, *args: str) -> tuple[int, str]:
        before = capfd.readouterr()  # the rotations' own logs: scanned here too
        code = main(["status", "--secret-id", world.secret_arn, *args])
        out, err = capfd.readouterr()
        texts = [before.out, before.err, out, err]
        assert leakscan.find_leaks(texts, world.secret_material()) == []
        return code, out + err

    return run


def report(status: Status, world: World, *args: str) -> tuple[int, dict[str, Any]]:
    code, out = status(world, "--json", *args)
    loaded: dict[str, Any] = json.loads(out)
    return code, loaded


def problems(status: Status, world: World) -> dict[str, dict[str, Any]]:
    """The problems ``status --json --show-key-ids`` finds, by code."""
    code, found = report(status, world, "--show-key-ids")
    assert (code == EXIT_OK) == (not found["problems"]) == found["healthy"]
    return {problem["code"]: problem for problem in found["problems"]}


def run_fix(world: World, command: str) -> None:
    """Run one printed fix command as a user would."""
    argv = shlex.split(command)
    if argv[:3] == ["aws", "secretsmanager", "rotate-secret"]:
        # Secrets Manager would invoke the function; the driver plays that part (module docstring)
        assert argv[3:] == ["--secret-id", world.secret_arn]
        assert world.rotate().ok
    else:
        aws(command)


def fix_and_recheck(status: Status, world: World, code: str) -> None:
    """Run every command of problem ``code``'s fix, then check ``status`` no longer reports it."""
    found = problems(status, world)
    assert found[code]["fix"], found[code]
    for command in found[code]["fix"]:
        run_fix(world, command)
    assert code not in problems(status, world)


def backdate(world: World, version_id: str, delta: timedelta) -> None:
    """Make a version older by ``delta``, as time passing would (moto keeps epoch seconds)."""
    version = world.driver._secret().versions[version_id]
    version["createdate"] = int(time.time() - delta.total_seconds())


def test_a_healthy_secret_exits_0_with_its_state(world: World, status: Status) -> None:
    # GIVEN a secret rotated twice (the old key is Inactive, as OLD_KEY_ACTION=deactivate says)
    assert world.rotate().ok
    assert world.rotate().ok
    current = world.value()["access_key_id"]
    # WHEN status runs
    code, out = status(world)
    # THEN it exits 0, shows rotation on, both versions and both keys, masked
    assert code == EXIT_OK, out
    assert "rotation       enabled, every 30 days" in out
    assert "no rotation in progress" in out
    assert "healthy: no problem found" in out
    assert f"{current[:4]}…{current[-4:]}" in out
    assert not [key for key in world.access_keys() if key in out]
    assert "Inactive" in out
    assert "last used" in out


def test_json_output_schema(world: World, status: Status) -> None:
    # GIVEN a rotated secret
    assert world.rotate().ok
    before = datetime.now(UTC)
    # WHEN status prints JSON with the key ids in full
    code, found = report(status, world, "--show-key-ids")
    # THEN the object has the documented fields and types
    assert code == EXIT_OK
    assert set(found) == {
        "schema", "secret", "healthy", "rotation", "versions", "iam_user", "keys", "problems",
        "notices",
    }  # fmt: skip
    assert set(found["notices"]) == {
        "can_arrive", "region", "trail", "reason", "missing_permission"
    }  # fmt: skip
    assert found["schema"] == 1
    assert found["secret"]["arn"] == world.secret_arn
    assert found["healthy"] is True
    rotation = found["rotation"]
    assert set(rotation) == {
        "enabled", "schedule", "last_rotated", "next_rotation", "state", "pending_version",
        "pending_since",
    }  # fmt: skip
    assert rotation["enabled"] is True
    assert rotation["schedule"]["automatically_after_days"] == 30
    assert rotation["state"] == "idle"
    last = datetime.fromisoformat(rotation["last_rotated"])
    assert last <= before + timedelta(seconds=1)
    current = world.value()["access_key_id"]
    (version,) = [v for v in found["versions"] if "AWSCURRENT" in v["stages"]]
    assert set(version) == {"version_id", "stages", "created", "holds", "access_key_id", "note"}
    assert (version["holds"], version["access_key_id"]) == ("credentials", current)
    assert found["iam_user"] == world.user_name
    (key,) = found["keys"]
    assert set(key) == {
        "access_key_id", "status", "created", "held_by", "held_by_no_version", "new_in_rotation",
        "grace_period_since", "last_used",
    }  # fmt: skip
    assert key["access_key_id"] == current
    assert key["held_by"] == [{"version_id": version["version_id"], "stages": ["AWSCURRENT"]}]
    assert key["held_by_no_version"] is False
    assert key["last_used"]["service"] == "ses"  # the rotation's SMTP test logged in
    assert key["last_used"]["region"] == world.region
    assert found["problems"] == []
    # AND without --show-key-ids every key id is masked
    _, masked = report(status, world)
    assert masked["keys"][0]["access_key_id"] == f"{current[:4]}…{current[-4:]}"
    assert current not in json.dumps(masked, ensure_ascii=False)


def test_a_never_rotated_secret_says_rotate_and_rotating_clears_it(
    world: World, status: Status
) -> None:
    # GIVEN the secret as the stack creates it: the bootstrap value only
    code, out = status(world)
    # THEN status exits 1 and names the problem and the command
    assert code == EXIT_FAILED
    assert "never-rotated" in out
    assert f"$ aws secretsmanager rotate-secret --secret-id {world.secret_arn}" in out
    # WHEN the fix runs / THEN the secret is healthy
    fix_and_recheck(status, world, "never-rotated")
    assert problems(status, world) == {}


def test_a_rotation_in_progress_is_shown_with_its_start_and_is_no_problem(
    world: World, status: Status
) -> None:
    # GIVEN a rotated secret, then a rotation that has made its key (createSecret) and goes on
    assert world.rotate().ok
    token = world.driver.start()
    assert world.driver.invoke("createSecret", token).ok
    backdate(world, token, timedelta(minutes=3))
    # WHEN status runs
    code, found = report(status, world)
    # THEN it is in progress since the pending version was made, and that is not a problem
    assert code == EXIT_OK, found["problems"]
    rotation = found["rotation"]
    assert (rotation["state"], rotation["pending_version"]) == ("in-progress", token)
    since = datetime.fromisoformat(rotation["pending_since"])
    assert timedelta(minutes=2) < datetime.now(UTC) - since < timedelta(minutes=4)
    (pending,) = [k for k in found["keys"] if k["held_by"][0]["stages"] == ["AWSPENDING"]]
    assert pending["status"] == "Active"
    _, out = status(world)
    assert "rotation in progress since" in out


def test_a_rotation_just_started_is_not_stuck_yet(world: World, status: Status) -> None:
    # GIVEN RotateSecret a moment ago: an empty pending version (createSecret runs)
    assert world.rotate().ok
    world.driver.start()
    # THEN status shows it in progress and finds no problem
    code, found = report(status, world)
    assert code == EXIT_OK, found["problems"]
    assert found["rotation"]["state"] == "in-progress"


@pytest.mark.parametrize(
    ("steps", "age", "says"),
    [
        pytest.param((), timedelta(minutes=20), "still empty", id="empty-pending-version"),
        pytest.param(
            ("createSecret", "setSecret"),
            timedelta(hours=25),
            "longer than its rotation window (24 h)",
            id="pending-past-its-window",
        ),
    ],
)
def test_a_stuck_rotation_is_started_over_by_its_fix(
    world: World, status: Status, steps: tuple[str, ...], age: timedelta, says: str
) -> None:
    # GIVEN a rotated secret whose next rotation stopped after `steps`, `age` ago
    assert world.rotate().ok
    current = world.value()["access_key_id"]
    token = world.driver.start()
    for step in steps:
        assert world.driver.invoke(step, token).ok
    backdate(world, token, age)
    # WHEN status runs / THEN it is stuck, exit 1, with the runbook's three commands
    code, out = status(world)
    assert code == EXIT_FAILED
    assert "STUCK since" in out
    assert says in out
    found = problems(status, world)["rotation-stuck"]
    assert [shlex.split(c)[:3] for c in found["fix"]] == [
        ["aws", "secretsmanager", "cancel-rotate-secret"],
        ["aws", "secretsmanager", "update-secret-version-stage"],
        ["aws", "secretsmanager", "rotate-secret"],
    ]
    assert f"--remove-from-version-id {token}" in found["fix"][1]
    # WHEN the fix runs as printed / THEN a new rotation completed and nothing is stuck
    fix_and_recheck(status, world, "rotation-stuck")
    assert world.value()["access_key_id"] != current
    code, found_after = report(status, world)
    assert found_after["rotation"]["state"] == "idle"
    assert code == EXIT_OK, found_after["problems"]


def test_a_foreign_key_is_flagged_and_its_fix_deletes_it(world: World, status: Status) -> None:
    # GIVEN a rotated secret and a key made by hand on its user
    assert world.rotate().ok
    foreign = world.iam.create_access_key(UserName=world.user_name)["AccessKey"]["AccessKeyId"]
    leakscan.remember(*world.secret_material())
    # WHEN status runs (key ids masked)
    code, out = status(world)
    # THEN it flags the key, and the fix shows the masked id as a placeholder
    assert code == EXIT_FAILED
    masked = f"{foreign[:4]}…{foreign[-4:]}"
    assert f"{masked}  Active" in out
    assert "HELD BY NO VERSION" in out
    assert f"--access-key-id <{masked}>" in out
    assert "--show-key-ids" in out
    assert foreign not in out
    # WHEN the fix printed with --show-key-ids runs / THEN the key is gone and all is healthy
    found = problems(status, world)["unheld-key"]
    assert found["access_key_id"] == foreign
    assert found["fix"] == [
        f"aws iam delete-access-key --user-name {world.user_name} --access-key-id {foreign}"
    ]
    fix_and_recheck(status, world, "unheld-key")
    assert foreign not in world.access_keys()
    assert problems(status, world) == {}


def test_a_key_of_a_cancelled_rotation_is_placed_not_flagged(world: World, status: Status) -> None:
    # GIVEN a rotation that made its key, then was cancelled as the runbook says
    assert world.rotate().ok
    token = world.driver.start()
    assert world.driver.invoke("createSecret", token).ok
    made = world.value("AWSPENDING")["access_key_id"]
    world.cancel_rotation(token)
    # WHEN status runs
    _, found = report(status, world, "--show-key-ids")
    # THEN the key is shown with its unlabelled version and not flagged; rotation is off
    (key,) = [k for k in found["keys"] if k["access_key_id"] == made]
    assert key["held_by"] == [{"version_id": token, "stages": []}]
    assert key["held_by_no_version"] is False
    assert {p["code"] for p in found["problems"]} == {"rotation-off"}


def test_a_key_in_its_grace_period_shows_since_when(
    make_world: Callable[..., World], status: Status
) -> None:
    # GIVEN a grace period of an hour and two rotations: the old key stays Active
    world = make_world(function_env={"OLD_KEY_GRACE_PERIOD": "1h"})
    assert world.rotate().ok
    assert world.rotate().ok
    old = world.value("AWSPREVIOUS")["access_key_id"]
    tags = world.iam.list_user_tags(UserName=world.user_name)["Tags"]
    (record,) = [t["Value"] for t in tags if t["Key"] == "ses-smtp-rotation:retire"]
    parsed = Retirement.decode(record)
    assert parsed is not None
    started = parsed.since
    # WHEN status runs
    code, found = report(status, world, "--show-key-ids")
    # THEN the old key is in its grace period since the promotion, which is no problem
    assert code == EXIT_OK, found["problems"]
    keys = {k["access_key_id"]: k for k in found["keys"]}
    assert keys[old]["status"] == "Active"
    assert datetime.fromisoformat(keys[old]["grace_period_since"]) == started
    assert keys[world.value()["access_key_id"]]["grace_period_since"] is None
    _, out = status(world)
    assert f"in grace period since {started.isoformat().replace('+00:00', 'Z')}" in out


def test_an_old_key_retired_is_not_in_a_grace_period(world: World, status: Status) -> None:
    # GIVEN no grace period: the old key was deactivated at finishSecret
    assert world.rotate().ok
    assert world.rotate().ok
    # THEN no key is shown in a grace period
    code, found = report(status, world)
    assert code == EXIT_OK
    assert [k["grace_period_since"] for k in found["keys"]] == [None, None]


def test_bootstrap_written_over_current_is_fixed_by_a_rotation(
    world: World, status: Status
) -> None:
    # GIVEN a stack update that wrote the bootstrap value over AWSCURRENT
    assert world.rotate().ok
    world.write_bootstrap_over_current()
    # THEN status names it, and the rotation it prints clears it
    assert "bootstrap-over-current" in problems(status, world)
    fix_and_recheck(status, world, "bootstrap-over-current")
    assert problems(status, world) == {}


def test_an_inactive_current_key_is_reactivated_by_its_fix(world: World, status: Status) -> None:
    # GIVEN AWSCURRENT's key made Inactive by hand (apps get 535)
    assert world.rotate().ok
    key = world.value()["access_key_id"]
    world.iam.update_access_key(UserName=world.user_name, AccessKeyId=key, Status="Inactive")
    # THEN status names it, and its fix reactivates the key
    assert problems(status, world)["current-key-inactive"]["access_key_id"] == key
    fix_and_recheck(status, world, "current-key-inactive")
    assert world.access_keys()[key] == "Active"


def test_a_deleted_current_key_is_replaced_by_a_rotation(world: World, status: Status) -> None:
    # GIVEN AWSCURRENT's key deleted by hand
    assert world.rotate().ok
    key = world.value()["access_key_id"]
    world.iam.delete_access_key(UserName=world.user_name, AccessKeyId=key)
    # THEN status names the missing key, and the rotation it prints clears the problem
    assert problems(status, world)["current-key-missing"]["access_key_id"] == key
    fix_and_recheck(status, world, "current-key-missing")
    assert problems(status, world) == {}


def test_a_user_that_does_not_exist_is_named(
    make_world: Callable[..., World], status: Status
) -> None:
    # GIVEN a secret that names a user IAM does not have
    world = make_world(bootstrap={"iam_user_name": "no-such-user"})
    # WHEN status runs / THEN it exits 1 and says the user's keys cannot be read, and why
    code, out = status(world)
    assert code == EXIT_FAILED
    assert "iam-unreadable" in out
    assert "IAM user no-such-user cannot be read (NoSuchEntity)" in out


def test_a_version_that_does_not_parse_is_reported_never_echoed(
    world: World, status: Status
) -> None:
    # GIVEN a pending version whose value is not the schema's JSON, with a canary in it
    assert world.rotate().ok
    canary = "canary-status-0123456789"
    leakscan.remember(canary)
    put = world.sm.put_secret_value(
        SecretId=world.secret_arn,
        SecretString=f"not json {canary}",
        VersionStages=["AWSPENDING"],
    )
    # WHEN status runs / THEN the version is reported as not parsing, its value never shown
    code, out = status(world)
    assert code == EXIT_FAILED
    assert "does not parse" in out
    assert canary not in out
    assert put["VersionId"] in out
    assert "rotation-stuck" in problems(status, world)


def test_rotation_turned_off_is_a_problem_fixed_by_rotating(world: World, status: Status) -> None:
    # GIVEN rotation cancelled by hand after a rotation
    assert world.rotate().ok
    world.sm.cancel_rotate_secret(SecretId=world.secret_arn)
    # THEN status says rotation is off; the rotation it prints turns it back on
    code, out = status(world)
    assert code == EXIT_FAILED
    assert "rotation       DISABLED" in out
    fix_and_recheck(status, world, "rotation-off")


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        pytest.param(["status"], EXIT_USAGE, id="no-secret-id"),
        pytest.param(["status", "--secret-id", "missing-secret"], EXIT_FAILED, id="unknown"),
    ],
)
def test_bad_usage_exits_2_and_a_missing_secret_1(
    world: World, capfd: pytest.CaptureFixture[str], argv: list[str], code: int
) -> None:
    assert world.secret_arn
    assert main(argv) == code
    _, err = capfd.readouterr()
    assert len(err.strip().splitlines()) == 1
