"""The demo's command line and rotations (``make demo``, ``python -m sandbox.demo``).

moto's server on 127.0.0.1 plays AWS (reached through ``AWS_ENDPOINT_URL``), an SES-like SMTP
server plays SES (with a propagation delay for new keys), and the local Secrets Manager driver runs
rotations through the real ``lambda_handler``, with the old key's grace period shortened to
seconds and the function's sweep run every half second (the template runs it hourly). Meanwhile
two consumers send a message every ~100 ms: an app using the client helper (cache shorter than
the grace period) and a daemon that reads the secret only when it starts and restarts every
second. The demo fails unless every send succeeds, every rotation completes and the rotation
invariants hold after each one. ``--grace 0`` shows the behaviour without a grace period: the
daemon's key stops working at finishSecret, before its next start.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from sandbox.demo.app import MailApp, mask, wait_for_first_send
from sandbox.demo.background import Background
from sandbox.demo.daemons import ReadOnceApp, SyncedDaemon
from sandbox.demo.options import build_parser, seconds
from sandbox.demo.progress import Progress
from sandbox.demo.rotation import rotate
from sandbox.demo.summary import Summary, print_summary
from sandbox.world import local_world

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterator, Sequence

    from sandbox.secrets_manager import Handler
    from sandbox.world import World

# Between rotations: the consumers move to the new key, then the sweep retires the old one (the
# grace period plus this margin; a new rotation inside the window would retire it early).
_PAUSE_AFTER_GRACE = 1.5
_SWEEP_EVERY = 0.5  # the template's schedule is hourly; the demo's grace period is seconds
_APP_MAX_AGE = 1  # the helper's cache (300 s by default) stays shorter than the grace period
_SYNC_EVERY = 0.5  # sync's --interval (300 s by default)
_FIRST_SEND_TIMEOUT = 10.0
EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


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
    # One invocation at a time, as in one Lambda container: the rotation's steps and the sweep
    # share the function's module-level logger and metrics.
    one_at_a_time = threading.Lock()

    def handler(event: dict[str, Any], context: Any) -> object:  # noqa: ANN401 - Lambda contract
        from rotation_handler.app import lambda_handler  # noqa: PLC0415 - loads in the world's env

        sink = io.StringIO()
        try:
            with one_at_a_time, contextlib.redirect_stdout(sink):
                return lambda_handler(event, context)
        finally:
            if verbose:
                for line in sink.getvalue().splitlines():
                    console.print(Text(f"      {line}", style="dim"))

    return handler


def run(
    args: argparse.Namespace, *, console: Console, observer: Callable[[World], None] | None
) -> Summary:
    """Start the world, rotate once as a deployment does, then rotate with the app sending."""
    handler = quiet_handler(console, verbose=args.verbose)
    with (
        _quiet_logger("werkzeug"),
        local_world(
            propagation_delay=args.delay,
            moto_server=True,
            handler=handler,
            function_env={"OLD_KEY_GRACE_PERIOD": args.grace},
        ) as world,
    ):
        try:
            return _run_in(world, args, console)
        finally:
            if observer is not None:
                observer(world)


def _run_in(world: World, args: argparse.Namespace, console: Console) -> Summary:
    with tempfile.TemporaryDirectory(prefix="ses-smtp-demo-") as workdir:
        return _run_with(world, args, console, workdir)


def _run_with(world: World, args: argparse.Namespace, console: Console, workdir: str) -> Summary:
    _print_world(world, console)
    summary = Summary(planned=args.rotations)
    console.rule("bootstrap rotation (what the deployment's first rotation does)")
    bootstrap_progress = progress = Progress(console, world)
    with progress:
        world.driver.on_step = progress
        summary.bootstrap = rotate(world, progress, console, number=0)
    if not summary.bootstrap.ok:
        return summary
    app = MailApp(
        secret_id=world.secret_arn,
        region=world.region,
        interval=args.interval,
        max_age=_APP_MAX_AGE,
        on_event=lambda line: console.print(Text(f"    {line}", style="magenta")),
    )
    daemon = ReadOnceApp(
        secret_id=world.secret_arn,
        region=world.region,
        interval=args.interval,
        restart_every=args.restart_every,
        on_event=lambda line: console.print(Text(f"    {line}", style="red")),
    )
    synced = SyncedDaemon(
        secret_id=world.secret_arn,
        region=world.region,
        path=Path(workdir) / "smtp-credentials.json",
        interval=args.interval,
        sync_every=_SYNC_EVERY,
        on_event=lambda line: console.print(Text(f"    {line}", style="red")),
    )
    progress = Progress(console, world, app=app)
    world.driver.on_step = progress
    sweeper = Sweeper(world, every=_SWEEP_EVERY, console=console)
    with app, daemon, synced, sweeper, progress, _live(console, progress):
        console.rule(
            f"3 consumers sending every {args.interval:g}s; grace period {args.grace}; "
            f"{args.rotations} rotations"
        )
        if not wait_for_first_send(app, timeout=_FIRST_SEND_TIMEOUT):
            summary.notes.append("the app could not send before the rotations")
        for number in range(1, args.rotations + 1):
            fail = args.fail_once if number == 1 else None
            with sweeper.paused:
                report = rotate(world, progress, console, number=number, fail_step=fail)
            summary.rotations.append(report)
            time.sleep(seconds(args.grace) + _PAUSE_AFTER_GRACE)
            console.print(
                f"    so far: app {app.stats.ok} ok / {app.stats.failed} failed, read-once "
                f"daemon {daemon.stats.ok} ok / {daemon.stats.failed} failed, synced daemon "
                f"{synced.stats.ok} ok / {synced.stats.failed} failed"
            )
            if not report.ok:
                break
    summary.record(app=app, progress=progress, auth_total=len(world.ses.auth_attempts))
    # The bootstrap rotation's SMTP test is in the lines above too: its attempts count.
    summary.auth_test += bootstrap_progress.test_auth
    summary.auth_refused += bootstrap_progress.test_refused
    old_key_refusals = sum(
        attempt.reason in {"inactive", "unknown-key"} for attempt in world.ses.auth_attempts
    )
    summary.record_daemon(
        daemon,
        old_key_refusals=old_key_refusals,
        restart_every=args.restart_every,
        grace=args.grace,
    )
    summary.record_synced(synced)
    summary.retired_by_sweep = sweeper.retired
    summary.sweep_deactivated = sweeper.actions["deactivate"]
    summary.sweep_deleted = sweeper.actions["delete"]
    summary.notes += sweeper.errors
    return summary


class Sweeper(Background):
    """Invoke the function's RetireOldKeys sweep every ``every`` seconds, as its schedule does."""

    def __init__(self, world: World, *, every: float, console: Console) -> None:
        super().__init__("sweep")
        self.world, self.every, self.console = world, every, console
        self.retired = 0
        self.actions: Counter[str] = Counter()
        self.errors: list[str] = []
        # Held by a rotation while it runs: the rotation's counts of keys deactivated and deleted
        # are its own, the sweep's are the sweep's (the schedule is hourly, the grace period 24h).
        self.paused = threading.Lock()

    def run(self) -> None:
        """Sweep until stopped; a failed sweep is reported and ends the thread."""
        while not self._stop.wait(self.every):
            try:
                with self.paused:
                    summary = self.world.sweep()
            except Exception as err:  # noqa: BLE001 - reported, and the demo fails
                self.errors.append(f"the sweep failed: {type(err).__name__}: {err}")
                return
            if summary.get("Result", "").startswith("retired"):
                action = summary["Result"].split(": ")[-1]
                self.retired += 1
                self.actions[action] += 1
                self.console.print(
                    Text(
                        f"    sweep: grace period over, {mask(summary.get('AccessKeyId'))} "
                        f"{action}d",
                        style="cyan",
                    )
                )


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
