"""One rotation of the demo: run it through the local driver, count its calls, check it."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any, Final

from rich.text import Text

from sandbox import invariants
from sandbox.calls import count_calls
from sandbox.demo.app import mask
from sandbox.demo.summary import RotationReport
from sandbox.faults import Fault, FaultKind, inject

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rich.console import Console

    from sandbox.demo.progress import Progress
    from sandbox.secrets_manager import Rotation, StepRecord
    from sandbox.world import World

# One meaningful AWS call per step: (client of the function, operation, how it fails).
STEP_FAULTS: Final[dict[str, tuple[str, str, FaultKind]]] = {
    "createSecret": ("iam", "CreateAccessKey", FaultKind.LOST_ANSWER),
    "setSecret": ("iam", "ListAccessKeys", FaultKind.BEFORE),
    "testSecret": ("sm", "DescribeSecret", FaultKind.BEFORE),
    "finishSecret": ("sm", "UpdateSecretVersionStage", FaultKind.LOST_ANSWER),
}


def rotate(
    world: World,
    progress: Progress,
    console: Console,
    *,
    number: int,
    fail_step: str | None = None,
) -> RotationReport:
    """Run one rotation (with ``fail_step``'s fault armed once), print its keys, report it."""
    if number:
        console.rule(f"rotation {number}")
    before = world.access_keys()
    progress.attempt_number = 0
    started = time.monotonic()
    with count_calls(account_id=world.driver.account_id, region=world.region) as calls:
        with _fail_once(world, progress, fail_step) as fault:
            rotation = world.driver.rotate(
                max_attempts=3, before_retry=lambda attempt: _show_retry(console, attempt)
            )
        after = world.access_keys()
    report = RotationReport(
        number=number,
        attempts=len(rotation.attempts),
        ok=rotation.ok,
        created=calls["IAM.CreateAccessKey"],
        deleted=calls["IAM.DeleteAccessKey"],
        deactivated=sum(
            status == "Active" and after.get(key) == "Inactive" for key, status in before.items()
        ),
        seconds=time.monotonic() - started,
        problems=_check(world, rotation),
        fault=f"{fault.operation} ({fault.kind})" if fault and fault.fired else None,
    )
    _print_keys(console, after, world)
    for problem in report.problems:
        console.print(Text(f"    ✗ {problem}", style="bold red"))
    return report


def _show_retry(console: Console, attempt: Any) -> None:  # noqa: ANN401 - the driver's Attempt
    console.print(
        Text(
            f"    the rotation failed ({attempt.error}); Secrets Manager retries it with the "
            "same token",
            style="yellow",
        )
    )


def _check(world: World, rotation: Rotation) -> list[str]:
    problems = [] if rotation.ok else [f"rotation failed: {rotation.attempts[-1].error}"]
    return problems + invariants.violations(world)


def _print_keys(console: Console, keys: dict[str, str], world: World) -> None:
    current = world.value().get("access_key_id")
    shown = [f"{mask(k)} {s}" + (" (AWSCURRENT)" if k == current else "") for k, s in keys.items()]
    console.print(f"    IAM keys now: {', '.join(shown)}")


@contextlib.contextmanager
def _fail_once(world: World, progress: Progress, step: str | None) -> Iterator[Fault | None]:
    """Arm a fault on the function's client during the first run of ``step``."""
    if step is None:
        yield None
        return
    from rotation_handler import app  # noqa: PLC0415 - loads in the world's env

    client_name, operation, kind = STEP_FAULTS[step]
    fault = Fault(operation, kind)
    stack = contextlib.ExitStack()
    show = progress.__call__

    def on_step(name: str, token: str, record: StepRecord | None) -> None:
        if name == step and record is None and not fault.fired:
            stack.enter_context(inject(getattr(app.runtime(), client_name), fault))
            progress.console.print(
                Text(
                    f"    fault armed: {operation} will fail ({kind}) during {step}", style="yellow"
                )
            )
        show(name, token, record)
        if name == step and record is not None:
            stack.close()

    world.driver.on_step = on_step
    try:
        with stack:
            yield fault
    finally:
        world.driver.on_step = progress
