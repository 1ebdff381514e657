"""The benchmark's rotation path on a real local world: counts and rows, never timing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench import path, plot, rotation, run
from bench.report import markdown_table

if TYPE_CHECKING:
    from pathlib import Path


def test_steady_state_rotation_is_counted_and_reported(tmp_path: Path) -> None:
    # GIVEN a world in steady state (bootstrapped and warmed up)
    with rotation.steady_world(max_delay=0.0) as (world, bootstrap):
        # WHEN one steady-state rotation is measured
        result = rotation.measure_rotations(world, bootstrap, {0.0: 1})
        helper_rows, helper_data = run.helper_rows(world, sends=5)
    sample = result.samples[0]
    # THEN its logical AWS calls are counted per operation, and each AUTH attempt is seen
    assert bootstrap.calls["IAM.CreateAccessKey"] == 1
    assert sample.calls["IAM.CreateAccessKey"] == 1
    assert sample.calls["IAM.DeleteAccessKey"] == 1  # the key deactivated last time
    assert sample.total_calls == sum(sample.calls.values())
    assert sample.auth_attempts >= 1
    # AND the rows name each measure beside its goal
    rows, data = run.rotation_rows(result)
    table = markdown_table(rows + helper_rows)
    assert "| AWS calls per rotation, steady state |" in table
    assert "| Rotation overshoot, D = 0 s |" in table
    assert data["calls"]["steady_state"] == sample.calls
    # AND the client helper is measured or the row says why not, never a made-up figure
    assert ("not_measured" in helper_data) == ("not measured" in helper_rows[0].figure)
    # AND the plot is written
    assert plot.plot_rotation(result.samples, tmp_path / "p.png", goal=0.5).stat().st_size > 0


def test_the_path_of_a_steady_create_secret_is_traced() -> None:
    # GIVEN a world in steady state
    with rotation.steady_world(max_delay=0.0) as (world, _):
        keys_before = world.access_keys()
        # WHEN the path of the next createSecret is traced
        trace = path.trace_create_secret(world)
        # THEN that rotation happened (a new key replaced one of the two)
        assert world.access_keys().keys() != keys_before.keys()
    # AND the path starts at the handler's module and reaches the step and the key calls
    assert trace.modules[0] == "rotation_handler.app"
    assert {"rotation_handler.steps", "rotation_handler.keys"} <= set(trace.modules)
    # AND only the function's modules are counted, each once; every one after the first was
    # entered by a crossing
    assert all(name.startswith("rotation_handler.") for name in trace.modules)
    assert len(set(trace.modules)) == len(trace.modules)
    assert trace.entries >= len(trace.modules) - 1 + trace.returns
