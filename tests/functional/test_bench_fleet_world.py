"""The fleet benchmark on a real local world: small N, low rates, counts and rows, never timing."""

from __future__ import annotations

import contextlib
import json
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from bench import fleet, run
from bench.fleet_report import fleet_rows
from bench.report import markdown_table
from sandbox import invariants
from sandbox.throttle import Limit
from sandbox.trespass import Trespass
from sandbox.world import local_world

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

# Rates low enough that five apps rotated by three threads must be throttled: with one token of
# burst, their ten ListAccessKeys calls at 2/s all pass only if the round took 4.5 s, and their
# twenty DescribeSecret calls at 5/s only if it took 3.8 s (unthrottled, it takes well under
# one). botocore's standard retry, with its real back-off, has to absorb them.
LOW_LIMITS = (
    Limit(name="IAM ListAccessKeys", rate=2, burst=1, operations=frozenset({"IAM.ListAccessKeys"})),
    Limit(
        name="Secrets Manager DescribeSecret",
        rate=5,
        burst=1,
        operations=frozenset({"SecretsManager.DescribeSecret"}),
    ),
    Limit(
        name="Secrets Manager writes",
        rate=4,
        burst=1,
        operations=frozenset(
            {"SecretsManager.PutSecretValue", "SecretsManager.UpdateSecretVersionStage"}
        ),
    ),
)


def test_small_fleet_rotates_under_throttling_with_no_violation() -> None:
    # GIVEN five apps in one world, three threads, and rates that cannot carry the load
    # WHEN every app is rotated once
    run = fleet.run_fleet(5, concurrency=3, rounds=1, limits=LOW_LIMITS)
    (only,) = run.rounds
    # THEN every rotation completed and no invariant broke (live key logs in, <= 2 keys, no app
    # touched another's user or secret)
    assert (only.rotations, only.completed) == (5, 5)
    assert run.violations == []
    # AND throttles happened on both services and botocore's retry absorbed them
    assert run.throttled.get("IAM.ListAccessKeys", 0) > 0
    assert run.throttled.get("SecretsManager.DescribeSecret", 0) > 0
    assert sum(run.absorbed.values()) > 0
    assert sum(run.absorbed.values()) + sum(run.exhausted.values()) <= sum(run.throttled.values())
    # AND the watch for calls across apps saw every call the function made
    assert run.watched_calls >= sum(only.calls.values())
    # AND each thread was one execution environment, kept for the whole run
    assert 1 <= run.environments <= 3
    # AND the calls that reached moto are counted: a key and a version per app at least
    assert only.calls["IAM.CreateAccessKey"] >= 5
    assert only.calls["SecretsManager.PutSecretValue"] >= 5
    # AND the rows report it, violations judged against 0
    rows, data = fleet_rows([run], concurrency=3, source="test")
    table = markdown_table(rows)
    assert "| Fleet N = 5, C = 3: invariant violations (1 rounds, all apps) | 0 | 0 | ✅ met |" in (
        table
    )
    assert data["runs"][0]["violations"] == []
    json.dumps(data)  # results.json must be able to hold it


def test_fleet_invariants_see_a_key_of_another_app() -> None:
    # GIVEN two fleet apps, each rotated once (no throttling)
    with local_world(function_env=fleet.FLEET_ENV) as world:
        first, second = fleet.add_apps(world, 2)
        assert first.world.driver.rotate().ok
        assert second.world.driver.rotate().ok
        assert invariants.cross_app_violations([first.world, second.world]) == []
        # WHEN the first app's secret is made to hold the second app's live key
        value = second.world.value()
        first.world.sm.put_secret_value(SecretId=first.secret_arn, SecretString=json.dumps(value))
        # THEN the cross-app check names it
        problems = invariants.cross_app_violations([first.world, second.world])
    assert len(problems) == 1
    assert second.user_name in problems[0]
    assert first.user_name in problems[0]


def test_trespass_records_a_call_on_another_apps_user(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN two apps and a watch on a client, the thread attributed to the first app
    with local_world(function_env=fleet.FLEET_ENV) as world:
        first, second = fleet.add_apps(world, 2)
        trespass = Trespass()
        trespass.attach(world.iam)
        try:
            with trespass.rotating(first.name, user=first.user_name, secrets={first.secret_arn}):
                # WHEN the first app's rotation lists its own keys, then the other app's
                world.iam.list_access_keys(UserName=first.user_name)
                world.iam.list_access_keys(UserName=second.user_name)
                # AND one that names no user (acting on the caller's own; moto has no such user)
                with contextlib.suppress(ClientError):
                    world.iam.list_access_keys()
            # AND a call outside any rotation is not attributed
            world.iam.list_access_keys(UserName=second.user_name)
        finally:
            trespass.detach(world.iam)
    # THEN the call on the other app's user and the one naming none are recorded, only those
    assert trespass.problems == [
        f"{first.name}'s rotation called ListAccessKeys on user {second.user_name}",
        f"{first.name}'s rotation called ListAccessKeys without naming a user",
    ]
    assert trespass.checked == 3
    assert capsys.readouterr().out == ""


def test_fleet_only_writes_its_own_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN the quick plan's small fleets WHEN the bench runs the fleet alone
    assert run.main(["--fleet-only", "--quick", "--output", str(tmp_path)]) == 0
    # THEN its figures go to fleet_results.json, leaving a full run's results.json alone
    assert sorted(path.name for path in tmp_path.iterdir()) == ["fleet_results.json"]
    data = json.loads((tmp_path / "fleet_results.json").read_text(encoding="utf-8"))
    assert [r["apps"] for r in data["fleet"]["runs"]] == list(run.QUICK.fleet_sizes)
    assert data["missed"] == []
    assert all(r["violations"] == [] for r in data["fleet"]["runs"])
    out = capsys.readouterr().out
    assert "| Fleet: function concurrency C |" in out
    assert "| Fleet: cost growth with N |" in out


def test_an_app_left_mid_rotation_counts_as_not_done_and_the_others_rotate() -> None:
    # GIVEN two apps, the first with a rotation started and never finished (AWSPENDING is out)
    with local_world(function_env=fleet.FLEET_ENV) as world:
        stuck, healthy = fleet.add_apps(world, 2)
        stuck.world.driver.start()
        # WHEN a round rotates both
        with ThreadPoolExecutor(max_workers=2) as pool:
            result = fleet.rotate_round([stuck, healthy], pool=pool, number=1, trespass=Trespass())
    # THEN the stuck one is reported as a violation, and the other one rotated all the same
    assert (result.rotations, result.completed) == (2, 1)
    assert result.violations == [f"{stuck.name}: rotation did not complete"]
