"""The benchmark of ``status --fleet`` on a real local world: small N, low rates, never timing."""

from __future__ import annotations

from bench import fleet_status
from bench.report import markdown_table
from sandbox.throttle import Limit

# One token of burst and 4/s: five apps' ListAccessKeys calls read by three workers must meet
# "Rate exceeded", and botocore's adaptive retry has to absorb every one.
LOW_LIMITS = (
    Limit(name="IAM ListAccessKeys", rate=4, burst=1, operations=frozenset({"IAM.ListAccessKeys"})),
)


def test_a_small_fleet_lists_its_three_broken_apps_first_under_throttling() -> None:
    # GIVEN five apps, three broken, read by three workers at low rates
    run = fleet_status.run_status(5, workers=3, limits=LOW_LIMITS)
    # THEN status exits 1 and lists exactly the broken apps first, each with its own problem
    assert run.exit_code == 1
    assert run.found_first, (run.first, run.broken, run.codes)
    assert sorted(code for codes in run.codes.values() for code in codes) == sorted(
        fleet_status.BROKEN
    )
    # AND the throttled answers were all absorbed: no call ran out of retries
    assert run.throttled.get("IAM.ListAccessKeys", 0) > 0
    assert run.absorbed == run.throttled
    assert run.exhausted == {}
    # AND each app cost its reads once: no GetAccessKeyLastUsed, one ListSecrets
    assert run.calls["SecretsManager.ListSecrets"] == 1
    assert run.calls["IAM.ListAccessKeys"] == run.calls["SecretsManager.DescribeSecret"] == 5
    assert "IAM.GetAccessKeyLastUsed" not in run.calls
    # AND once the printed fix of each broken app ran, the fleet is healthy: exit 0
    assert (run.fixed_exit_code, run.fixed_unhealthy) == (0, 0)
    # AND the rows judge the order and the fixes, and show the calls
    rows, data = fleet_status.status_rows(run)
    assert [row.mark for row in rows][1:] == ["n/a", "met", "met"]
    assert data["found_first"] is True
    assert "status --fleet, N = 5, 3 workers" in markdown_table(rows)


def test_the_order_row_is_missed_when_a_healthy_app_comes_first() -> None:
    # GIVEN a run whose first lines are not the broken apps
    run = fleet_status.StatusRun(
        apps=4,
        workers=1,
        seconds=1.0,
        exit_code=1,
        calls={"SecretsManager.ListSecrets": 1},
        throttled={},
        absorbed={},
        exhausted={},
        broken=["a", "b", "c"],
        first=["a", "b", "d"],
        codes={"a": ["rotation-off"], "b": ["rotation-stuck"], "d": ["x"]},
        fixed_exit_code=1,
        fixed_unhealthy=1,
    )
    # THEN the order row and the fixes' row are missed, the wall time met
    rows, _ = fleet_status.status_rows(run)
    assert [row.mark for row in rows] == ["met", "n/a", "missed", "missed"]
