"""The demo's closing summary: per-rotation rows, totals, step times, and the verdict.

Every figure is counted from the same events as the lines the demo printed above it: the app's
535s are the ``app: … refused (535)`` lines, each daemon's failures its ``FAILED`` lines, the
sweep's retirements its ``sweep:`` lines (and they count in the keys deactivated or deleted), the
old key's 535s every refusal of an old key the SMTP server logged (the consumers' refusals, added
up). ``tests/functional/test_demo.py`` checks that the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from sandbox.secrets_manager import STEPS

if TYPE_CHECKING:
    from rich.console import Console

    from sandbox.demo.app import MailApp
    from sandbox.demo.daemons import ReadOnceApp, SyncedDaemon
    from sandbox.demo.progress import Progress, StepTimes


@dataclass
class RotationReport:
    """One rotation as the demo measured it."""

    number: int
    attempts: int
    ok: bool
    created: int
    deactivated: int
    deleted: int
    seconds: float
    problems: list[str] = field(default_factory=list)
    fault: str | None = None


@dataclass
class Summary:
    """Everything the closing table shows, and whether the demo passed."""

    planned: int
    bootstrap: RotationReport | None = None
    rotations: list[RotationReport] = field(default_factory=list)
    sends_ok: int = 0
    sends_failed: int = 0
    rereads: int = 0
    auth_total: int = 0
    auth_test: int = 0
    auth_refused: int = 0
    auth_inactive: int = 0
    times: StepTimes | None = None
    notes: list[str] = field(default_factory=list)
    daemon_ok: int = 0
    daemon_failed: int = 0
    synced_ok: int = 0
    synced_failed: int = 0
    retired_by_sweep: int = 0
    sweep_deactivated: int = 0
    sweep_deleted: int = 0
    app_refused: int = 0
    daemon_refused: int = 0
    synced_refused: int = 0

    def record(self, *, app: MailApp, progress: Progress, auth_total: int) -> None:
        """Take the app's and the progress printer's counts once the rotations are over."""
        stats = app.stats
        self.sends_ok, self.sends_failed, self.rereads = stats.ok, stats.failed, stats.rereads
        self.app_refused = stats.refused
        self.auth_test, self.auth_refused = progress.test_auth, progress.test_refused
        self.auth_total, self.times = auth_total, progress.times

    def record_daemon(
        self, daemon: ReadOnceApp, *, old_key_refusals: int, restart_every: float, grace: str
    ) -> None:
        """Take the read-once daemon's counts and the server's old-key refusals; explain failures.

        The SES-like server logs every login refused for an old key (Inactive or deleted): each is
        one consumer's, counted by that consumer too.
        """
        self.daemon_ok, self.daemon_failed = daemon.stats.ok, daemon.stats.failed
        self.daemon_refused = daemon.stats.refused
        self.auth_inactive = old_key_refusals
        if self.daemon_failed:
            self.notes.append(
                f"the read-once daemon failed {self.daemon_failed} sends: it reads the secret "
                f"only when it starts (every {restart_every:g}s), and with grace period {grace} "
                "the old key stopped working before its next start"
            )

    def record_synced(self, synced: SyncedDaemon) -> None:
        """Take the synced daemon's counts."""
        self.synced_ok, self.synced_failed = synced.stats.ok, synced.stats.failed
        self.synced_refused = synced.stats.refused
        if self.synced_failed:
            self.notes.append(
                f"the daemon kept in step by sync failed {self.synced_failed} sends: the old key "
                "stopped working before sync's next pass rewrote its file"
            )

    @property
    def reports(self) -> list[RotationReport]:
        """The bootstrap rotation (if it ran) and the measured ones."""
        return ([self.bootstrap] if self.bootstrap else []) + self.rotations

    def total(self, name: str) -> int:
        """Sum of one count (``created``, ``deactivated``, ``deleted``) over every row.

        The bootstrap rotation counts: its key is as much a key created as any other; so do the
        sweep's retirements (between rotations), as its lines show them.
        """
        sweep = {"deactivated": self.sweep_deactivated, "deleted": self.sweep_deleted}
        return sum(int(getattr(report, name)) for report in self.reports) + sweep.get(name, 0)

    @property
    def passed(self) -> bool:
        """All rotations completed, invariants held, the app sent and never failed."""
        return (
            self.bootstrap is not None
            and len(self.rotations) == self.planned
            and all(report.ok and not report.problems for report in self.reports)
            and self.sends_failed == 0
            and self.sends_ok > 0
            and self.daemon_failed == 0
            and self.synced_failed == 0
            and not self.notes
        )


def _rotation_table(summary: Summary) -> Table:
    table = Table(title="Rotations", title_justify="left")
    for column in ("rotation", "attempts", "created", "inactive", "deleted", "time", "invariants"):
        table.add_column(column, justify="right" if column != "invariants" else "left")
    for report in summary.reports:
        table.add_row(
            "bootstrap" if report.number == 0 else str(report.number),
            str(report.attempts) + (" (fault)" if report.fault else ""),
            str(report.created),
            str(report.deactivated),
            str(report.deleted),
            f"{report.seconds:.2f}s",
            "held" if report.ok and not report.problems else "BROKEN",
        )
    if summary.retired_by_sweep:
        table.add_row(
            "sweep", "", "0", str(summary.sweep_deactivated), str(summary.sweep_deleted), "", ""
        )
    return table


def _totals_table(summary: Summary) -> Table:
    table = Table(title="Summary", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value")
    done = sum(report.ok for report in summary.rotations)
    table.add_row("rotations", f"{done}/{summary.planned} completed (+ bootstrap)")
    table.add_row(
        "keys created / deactivated / deleted",
        f"{summary.total('created')} / {summary.total('deactivated')} / {summary.total('deleted')}",
    )
    table.add_row(
        "app (client helper): sent ok / failed / 535s",
        f"{summary.sends_ok} / {summary.sends_failed} / {summary.app_refused}",
    )
    table.add_row(
        "read-once daemon: sent ok / failed", f"{summary.daemon_ok} / {summary.daemon_failed}"
    )
    table.add_row(
        "synced daemon (sync loop): sent ok / failed",
        f"{summary.synced_ok} / {summary.synced_failed}",
    )
    table.add_row("old keys retired by the sweep", str(summary.retired_by_sweep))
    table.add_row("AUTH attempts: all / testSecret", f"{summary.auth_total} / {summary.auth_test}")
    table.add_row(
        "AUTH 535: new key propagating / old key",
        f"{summary.auth_refused} / {summary.auth_inactive}",
    )
    if summary.times is not None:
        medians = [(step, summary.times.median(step)) for step in STEPS]
        for step, value in medians:
            if value is not None:
                table.add_row(f"median {step}", f"{value:.2f}s")
    return table


def print_summary(console: Console, summary: Summary) -> None:
    """Print the closing tables and the verdict."""
    console.rule("summary")
    console.print(_rotation_table(summary))
    console.print(_totals_table(summary))
    for note in summary.notes:
        console.print(Text(f"✗ {note}", style="bold red"))
    if summary.passed:
        console.print(
            Text("PASS: every rotation completed, invariants held, 0 failed sends", style="green")
        )
    else:
        console.print(Text("FAIL: see the lines marked ✗ above", style="bold red"))
