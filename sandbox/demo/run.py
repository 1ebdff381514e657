"""The demo's command line and rotations (``make demo``, ``python -m sandbox.demo``).

moto's server on 127.0.0.1 plays AWS (reached through ``AWS_ENDPOINT_URL``), an SES-like SMTP
server plays SES (with a propagation delay for new keys), and the local Secrets Manager driver runs
rotations through the real ``lambda_handler``. Meanwhile an app sends a message every ~100 ms
with credentials it reads from the secret; the demo fails unless every send succeeds, every
rotation completes and the rotation invariants hold after each one.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
import time
from typing import TYPE_CHECKING, Any, Final

from rich.console import Console
from rich.live import Live
from rich.text import Text

from sandbox import invariants
from sandbox.calls import count_calls
from sandbox.demo.app import MailApp, mask, wait_for_first_send
from sandbox.demo.progress import Progress
from sandbox.demo.summary import RotationReport, Summary, print_summary
from sandbox.faults import Fault, FaultKind, inject
from sandbox.secrets_manager import STEPS
from sandbox.world import local_world

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from sandbox.secrets_manager import Handler, Rotation, StepRecord
    from sandbox.world import World

# One meaningful AWS call per step: (client of the function, operation, how it fails).
STEP_FAULTS: Final[dict[str, tuple[str, str, FaultKind]]] = {
    "createSecret": ("iam", "CreateAccessKey", FaultKind.LOST_ANSWER),
    "setSecret": ("iam", "ListAccessKeys", FaultKind.BEFORE),
    "testSecret": ("sm", "DescribeSecret", FaultKind.BEFORE),
    "finishSecret": ("sm", "UpdateSecretVersionStage", FaultKind.LOST_ANSWER),
}
_PAUSE = 0.5  # between rotations, so the app is seen sending with the new key
_FIRST_SEND_TIMEOUT = 10.0
EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


def _positive_float(text: str) -> float:
    value = float(text)
    if value < 0:
        msg = f"must be >= 0, not {text}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        msg = f"must be >= 1, not {text}"
        raise argparse.ArgumentTypeError(msg)
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the demo's command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.demo",
        description="Rotate SES SMTP credentials against a local AWS (moto) and SMTP server "
        "while an app keeps sending mail; exit 1 if a send fails or an invariant breaks.",
    )
    parser.add_argument(
        "--delay",
        type=_positive_float,
        default=2.0,
        help="seconds a new key is refused by the SMTP server (SES propagation; default 2)",
    )
    parser.add_argument(
        "--rotations", type=_positive_int, default=3, help="rotations to run (default 3)"
    )
    parser.add_argument(
        "--fail-once",
        choices=STEPS,
        metavar="STEP",
        help="make one AWS call of STEP fail in the first rotation (" + "|".join(STEPS) + ")",
    )
    parser.add_argument(
        "--interval",
        type=_positive_float,
        default=0.1,
        help="seconds between two of the app's sends (default 0.1)",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="also print the function's JSON logs and metrics"
    )
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    console: Console | None = None,
    observer: Callable[[World], None] | None = None,
) -> int:
    """Run the demo; return 0 when everything held, 1 otherwise, 130 on Ctrl-C.

    ``observer`` is called with the world just before it closes (tests collect its secrets).
    """
    args = build_parser().parse_args(argv)
    # Bound to the real stdout: the function's output is redirected while it runs. Piped (not a
    # terminal), lines are not wrapped at rich's default 80 columns: a reader or a grep gets them
    # whole instead of broken mid-word.
    console = console or Console(
        file=sys.stdout, highlight=False, soft_wrap=not sys.stdout.isatty()
    )
    try:
        summary = run(args, console=console, observer=observer)
    except KeyboardInterrupt:
        console.print("interrupted: servers stopped, nothing left running")
        return EXIT_INTERRUPTED
    print_summary(console, summary)
    return EXIT_OK if summary.passed else EXIT_FAILED


def quiet_handler(console: Console, *, verbose: bool) -> Handler:
    """Wrap the real ``lambda_handler``, keeping its stdout (JSON logs, EMF metrics) off screen."""

    def handler(event: dict[str, Any], context: Any) -> object:  # noqa: ANN401 - Lambda contract
        from rotation_handler.app import lambda_handler  # noqa: PLC0415 - loads in the world's env

        sink = io.StringIO()
        try:
            with contextlib.redirect_stdout(sink):
                lambda_handler(event, context)
        finally:
            if verbose:
                for line in sink.getvalue().splitlines():
                    console.print(Text(f"      {line}", style="dim"))
        return None

    return handler


def run(
    args: argparse.Namespace, *, console: Console, observer: Callable[[World], None] | None
) -> Summary:
    """Start the world, rotate once as a deployment does, then rotate with the app sending."""
    handler = quiet_handler(console, verbose=args.verbose)
    with (
        _quiet_logger("werkzeug"),
        local_world(propagation_delay=args.delay, moto_server=True, handler=handler) as world,
    ):
        try:
            return _run_in(world, args, console)
        finally:
            if observer is not None:
                observer(world)


def _run_in(world: World, args: argparse.Namespace, console: Console) -> Summary:
    _print_world(world, console)
    summary = Summary(planned=args.rotations)
    console.rule("bootstrap rotation (what the deployment's first rotation does)")
    progress = Progress(console, world)
    with progress:
        world.driver.on_step = progress
        summary.bootstrap = _rotate(world, progress, console, number=0)
    if not summary.bootstrap.ok:
        return summary
    app = MailApp(
        secret_id=world.secret_arn,
        region=world.region,
        interval=args.interval,
        on_event=lambda line: console.print(Text(f"    {line}", style="magenta")),
    )
    progress = Progress(console, world, app=app)
    world.driver.on_step = progress
    with app, progress, _live(console, progress):
        console.rule(f"app sending every {args.interval:g}s; {args.rotations} rotations")
        if not wait_for_first_send(app, timeout=_FIRST_SEND_TIMEOUT):
            summary.notes.append("the app could not send before the rotations")
        for number in range(1, args.rotations + 1):
            fail = args.fail_once if number == 1 else None
            report = _rotate(world, progress, console, number=number, fail_step=fail)
            summary.rotations.append(report)
            console.print(f"    app so far: {app.stats.ok} sent ok, {app.stats.failed} failed")
            if not report.ok:
                break
            time.sleep(_PAUSE)
    summary.record(app=app, progress=progress, auth_total=len(world.ses.auth_attempts))
    return summary


def _print_world(world: World, console: Console) -> None:
    console.rule("local world")
    console.print(f"  AWS (moto server)  {world.endpoint_url}   via AWS_ENDPOINT_URL")
    console.print(
        f"  SES-like SMTP      {world.ses.host}:{world.ses.port}   STARTTLS + AUTH, "
        f"new keys refused for {world.ses.propagation_delay:g}s"
    )
    console.print(f"  IAM user           {world.user_name}")
    bootstrap = ", ".join(f"{k}={v}" for k, v in world.value().items())
    console.print(f"  secret             {world.secret_arn.rsplit(':', 1)[-1]}   {{{bootstrap}}}")


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    # moto's server logs every request (werkzeug); the demo's lines tell the story instead.
    log = logging.getLogger(name)
    saved = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(saved)


@contextlib.contextmanager
def _live(console: Console, progress: Progress) -> Iterator[None]:
    # Only a terminal redraws a line in place; elsewhere the printed lines are the whole story.
    if not console.is_terminal:
        yield
        return
    with Live(
        get_renderable=progress.status,
        console=console,
        transient=True,
        refresh_per_second=8,
        redirect_stdout=False,
        redirect_stderr=False,
    ):
        yield


def _rotate(
    world: World,
    progress: Progress,
    console: Console,
    *,
    number: int,
    fail_step: str | None = None,
) -> RotationReport:
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
