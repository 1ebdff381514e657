"""The ``sync`` subcommand: keep a credentials file in step with the secret, for daemons.

Daemons that read their SMTP credentials once (Postfix, off-the-shelf apps, other languages) never
see a rotation by themselves. ``sync`` reads the secret's AWSCURRENT version with the client
helper's reader (:func:`~ses_smtp_rotator.credentials.get_smtp_credentials`, the same parsing and
the same errors), renders it in one of ``export``'s formats and, only when the rendered text
differs from the file, replaces the file with ``export``'s atomic writer
(:func:`~ses_smtp_rotator._export.write_private`: new files 0600, an existing file keeps its owner,
group and mode, at most 0640). Then it runs the optional ``--on-change`` command through
``/bin/sh``, with no secret in its argv or environment.

``--once`` does one pass (for a systemd timer); without it the pass repeats every ``--interval``
seconds until SIGTERM or SIGINT, which end the loop between passes (exit 0, the file complete).

The ``--on-change`` command runs after every change until it succeeds once: before the file is
replaced, a marker ``.<file>.on-change-pending`` is created next to it, and it is removed only
when the command exits 0. A pass that finds the marker runs the command even when the file did not
change, so a failed command (or a ``sync`` killed between the write and the command) is retried by
the loop's next pass or the timer's next run.

Errors: in ``--once`` mode a secret that cannot be read (or never rotated) exits 1, a malformed
secret or a file that cannot be written exits 2, a failed ``--on-change`` command exits 1. In the
loop each of them is logged, the file is left as it is, and the next pass tries again.
"""

from __future__ import annotations

import contextlib
import os
import subprocess  # nosec B404 - runs the operator's --on-change command
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from ses_smtp_rotator import _aws, _console, _export
from ses_smtp_rotator._console import EXIT_FAILED, EXIT_OK, SMTP_PASSWORD_ENV
from ses_smtp_rotator._console import SECRET_ACCESS_KEY_ENV as SES_KEY_ENV
from ses_smtp_rotator._signals import stop_on_signals
from ses_smtp_rotator._status_render import mask
from ses_smtp_rotator.credentials import DEFAULT_MAX_AGE, get_smtp_credentials
from ses_smtp_rotator.exceptions import SesSmtpCredentialsError, UsageError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    from mypy_boto3_secretsmanager import SecretsManagerClient

    from ses_smtp_rotator.credentials import SmtpCredentials

DEFAULT_INTERVAL: Final = float(DEFAULT_MAX_AGE)
MAX_INTERVAL: Final = 86400.0  # a day; keep it well under the grace period and the schedule
SHELL: Final = "/bin/sh"
# Variables never handed to the --on-change command: the CLI's own secret variables and the AWS
# credentials sync reads the secret with. The command gets the file's path instead.
HIDDEN_FROM_COMMAND: Final = frozenset(
    {
        SES_KEY_ENV,
        SMTP_PASSWORD_ENV,
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
    }
)
FILE_ENV: Final = "SES_SMTP_SYNC_FILE"


class OnChangeFailedError(SesSmtpCredentialsError):
    """The ``--on-change`` command exited non-zero (the file holds the new credentials)."""


# ``--interval``: a finite number of seconds above 0, at most a day.
interval = _console.seconds_type(MAX_INTERVAL, "300")


def configure(parser: argparse.ArgumentParser) -> None:
    """Add ``sync``'s arguments (none of them is secret)."""
    parser.add_argument("--secret-id", required=True, help="name or ARN of the rotated secret")
    _console.add_region(parser)
    parser.add_argument(
        "--output",
        required=True,
        help="the file to keep in step: replaced atomically, only when the credentials changed; "
        "new files 0600, an existing file keeps its owner, group and mode (at most 0640)",
    )
    parser.add_argument(
        "--format",
        choices=sorted(_export.FORMATS),
        default="env",
        help="env: SMTP_*= lines; json: an object; postfix: a sasl_passwd line (default: env)",
    )
    parser.add_argument(
        "--interval",
        type=interval,
        default=DEFAULT_INTERVAL,
        metavar="SECONDS",
        help=f"seconds between two reads of the secret in the loop (default: "
        f"{DEFAULT_INTERVAL:g}); one GetSecretValue per read",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="one pass, then exit (for a timer); default: loop until SIGTERM or SIGINT",
    )
    parser.add_argument(
        "--on-change",
        metavar="COMMAND",
        help=f"run COMMAND with {SHELL} after the file changed (until it succeeds once); it gets "
        f"the file's path in {FILE_ENV} and no secret",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``sync`` as parsed: one pass (``--once``) or the loop.

    Raises
    ------
    UsageError
        The output is ``-``, a directory, or in a directory that does not exist; an empty
        ``--on-change`` (exit code 2).
    RegionNotFoundError
        No ``--region``, the secret id is not an ARN, and no region is configured (exit code 2).
    """
    if args.on_change is not None and not args.on_change.strip():
        msg = "--on-change is empty: give the command to run after a change, or leave it out"
        raise UsageError(msg)
    sync = Sync(
        secret_id=args.secret_id,
        output=_checked_output(args.output),
        fmt=args.format,
        on_change=args.on_change,
        client=_aws.secrets_client(args.region, args.secret_id),
    )
    with stop_on_signals() as stop:
        if args.once:
            return sync.once()
        return sync.loop(args.interval, wait=stop.wait)


def _checked_output(output: str) -> Path:
    if output == _export.STDOUT:
        msg = "sync keeps a file in step: give --output FILE (to print the credentials, use export)"
        raise UsageError(msg)
    path = Path(output)
    if path.is_dir():
        msg = f"--output {path} is a directory: name the file to write"
        raise UsageError(msg)
    if not path.parent.is_dir():
        msg = f"--output {path}: its directory {path.parent} does not exist"
        raise UsageError(msg)
    return path


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _log(text: str) -> None:
    _console.err(f"{_now()} sync: {text}")


@dataclass
class Sync:
    """One file kept in step with one secret (see the module docstring)."""

    secret_id: str
    output: Path
    fmt: str = "env"
    on_change: str | None = None
    client: SecretsManagerClient | None = None
    written_key: str | None = field(default=None, init=False)

    @property
    def pending(self) -> Path:
        """The marker that says the ``--on-change`` command still has to succeed."""
        return self.output.with_name(f".{self.output.name}.on-change-pending")

    def step(self) -> bool:
        """Read the secret, replace the file if it changed, run the command if one is pending.

        Returns
        -------
        bool
            Whether the file was replaced.

        Raises
        ------
        SesSmtpCredentialsError
            The secret cannot be read, is malformed or was never rotated (the file is unchanged).
        OSError
            The file (or the marker next to it) cannot be written; the file is unchanged.
        OnChangeFailedError
            The ``--on-change`` command failed; the file holds the new credentials.
        """
        # Every pass reads now: the pass itself is paced by the interval.
        creds = get_smtp_credentials(self.secret_id, client=self.client, force_fetch=True)
        text = _export.FORMATS[self.fmt](creds)
        changed = _export.read_or_none(self.output) != text
        if changed:
            if self.on_change is not None:
                _export.touch_private(self.pending)
            mode = _export.write_private(self.output, text)
            _log(
                f"wrote {self.fmt} credentials of key {mask(creds.username)} to {self.output} "
                f"(mode {mode:04o})"
            )
        elif self.written_key is None:
            _log(f"{self.output} already holds the credentials of key {mask(creds.username)}")
        self.written_key = creds.username
        if self.on_change is not None and self.pending.exists():
            self._run_on_change(self.on_change, creds)
        return changed

    def _run_on_change(self, command: str, creds: SmtpCredentials) -> None:
        env = {k: v for k, v in os.environ.items() if k not in HIDDEN_FROM_COMMAND}
        env[FILE_ENV] = str(self.output)
        done = subprocess.run(  # noqa: S603 # nosec B603 - the operator's own command, as documented
            [SHELL, "-c", command],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=_stderr_fd(),
            check=False,
        )
        if done.returncode != 0:
            how = (
                f"was killed by signal {-done.returncode}"
                if done.returncode < 0
                else f"exited with status {done.returncode}"
            )
            msg = (
                f"the --on-change command {how}; {self.output} "
                f"holds the credentials of key {mask(creds.username)}, and the command runs "
                "again at the next pass"
            )
            raise OnChangeFailedError(msg)
        with contextlib.suppress(FileNotFoundError):
            self.pending.unlink()
        _log("the --on-change command succeeded")

    def once(self) -> int:
        """One pass: 0 done, 1 the secret could not be read or the command failed.

        Raises
        ------
        UsageError
            The file cannot be written (exit code 2).
        SesSmtpCredentialsError
            The secret cannot be read (exit code 1) or is malformed (exit code 2).
        """
        try:
            self.step()
        except OnChangeFailedError as err:
            _log(str(err))
            return EXIT_FAILED
        except OSError as err:
            raise UsageError(_export.cannot_write(self.output, err)) from None
        return EXIT_OK

    def loop(self, interval: float, *, wait: Callable[[float], bool]) -> int:
        """Pass, then ``wait(interval)``, until ``wait`` says stop; every failure is retried.

        ``wait`` returns true when the loop must end (a signal arrived).
        """
        _log(
            f"keeping {self.output} in step with {self.secret_id} every {interval:g} s "
            "(SIGTERM or Ctrl-C stops)"
        )
        while True:
            try:
                self.step()
            except OnChangeFailedError as err:
                _log(str(err))
            except (SesSmtpCredentialsError, OSError) as err:
                reason = (
                    _export.cannot_write(self.output, err) if isinstance(err, OSError) else str(err)
                )
                kept = (
                    f"keeps the credentials of key {mask(self.written_key)}"
                    if self.written_key
                    else "is left as it is"
                )
                _log(f"{reason}; {self.output} {kept}; retrying in {interval:g} s")
            if wait(interval):
                _log(f"stopped; {self.output} is complete")
                return EXIT_OK


def _stderr_fd() -> int | None:
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr replaced by an object without a fd
        return None
