"""``status --fleet NAME``: every app of a fleet at a glance, the unhealthy ones first.

It lists the secrets tagged ``<tag key>=NAME`` (``secretsmanager:ListSecrets``, filtered by tag
key and value, then matched exactly: the service's filters match prefixes) in each region given,
and reads each one as ``status --secret-id`` does (:func:`ses_smtp_rotator._status.collect`), from
a pool of :data:`DEFAULT_WORKERS` threads (``--workers``). An app is a secret; its name is the
CloudFormation stack that made it (the ``aws:cloudformation:stack-name`` tag), else the secret's.

Secrets Manager's and IAM's read quotas are shared with the apps themselves, so the reads are
gentle: botocore's adaptive retry mode (a client-side rate limiter that slows down on throttling,
on top of standard mode's jittered back-off) with :data:`MAX_ATTEMPTS` attempts per call, one
client per region shared by the pool, and ``GetAccessKeyLastUsed`` (shown by ``status``, never
judged) is not called. A call still throttled after its attempts, like any error reading one
app (AccessDenied, a deleted user), is that app's problem, never the end of the run.

Progress goes to stderr every :data:`PROGRESS_SECONDS`; the report to stdout
(:mod:`ses_smtp_rotator._status_fleet_render`). Exit code 0: every app healthy; 1: one is not (or
no secret carries the tag); 2: bad usage.
"""

from __future__ import annotations

import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from ses_smtp_rotator import _aws, _console, _status, _status_fleet_render, _status_trail
from ses_smtp_rotator._status_fleet_model import App, Checked
from ses_smtp_rotator._status_model import Problem
from ses_smtp_rotator.contract import (
    FLEET_TAG,
    MAX_TAG_KEY,
    MAX_TAG_VALUE,
    STACK_NAME_TAG,
    TAG_TEXT,
)
from ses_smtp_rotator.exceptions import (
    SecretUnavailableError,
    SesSmtpCredentialsError,
    UsageError,
)
from ses_smtp_rotator.sdk_logging import quiet_sdk_loggers

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from mypy_boto3_iam import IAMClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_secretsmanager.type_defs import FilterTypeDef

__all__ = ["App", "Checked", "Clients", "build_clients", "check", "configure", "find", "run"]

DEFAULT_WORKERS: Final = 8  # reads in flight: 200 apps in seconds, a small share of the quotas
MAX_WORKERS: Final = 32
MAX_ATTEMPTS: Final = 8  # per call, botocore's adaptive mode (its default is 3)
PROGRESS_SECONDS: Final = 2.0
MAX_LIST_PAGES: Final = 100  # 100 secrets a page: 10,000 secrets per region at most
STACK_TAG: Final = STACK_NAME_TAG


def _tag_text(what: str, limit: int) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip()
        if not value or len(value) > limit or not TAG_TEXT.fullmatch(value):
            msg = f"must be a {what} such as default (letters, digits, spaces and _.:/=+@-)"
            raise argparse.ArgumentTypeError(msg)
        return value

    return parse


fleet_name = _tag_text("fleet name (the tag's value)", MAX_TAG_VALUE)


def _workers(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_WORKERS:
        msg = f"must be a whole number from 1 to {MAX_WORKERS}"
        raise argparse.ArgumentTypeError(msg)
    return int(text)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add ``status``'s arguments, and those that only ``--fleet`` takes."""
    _status.configure(parser)
    parser.add_argument(
        "--tag-key",
        type=_tag_text("tag key", MAX_TAG_KEY),
        help=f"with --fleet: the tag that names the fleet (default {FLEET_TAG})",
    )
    parser.add_argument(
        "--workers",
        type=_workers,
        help=f"with --fleet: secrets read at once (default {DEFAULT_WORKERS}, at most "
        f"{MAX_WORKERS})",
    )


@dataclass(frozen=True)
class Clients:
    """What ``status --fleet`` reads with: a Secrets Manager client per region, one IAM client."""

    secrets_manager: dict[str, SecretsManagerClient]
    iam: IAMClient


def build_clients(regions: Sequence[str], workers: int = DEFAULT_WORKERS) -> Clients:
    """Return clients with adaptive retries and a connection for each worker."""
    import boto3  # noqa: PLC0415 - boto3 is an optional dependency

    config = _aws.config(
        retries={"mode": "adaptive", "max_attempts": MAX_ATTEMPTS},
        max_pool_connections=max(10, workers),
    )
    session = boto3.session.Session()  # one session: boto3's default one is not thread-safe
    return Clients(
        secrets_manager={
            region: session.client("secretsmanager", region_name=region, config=config)
            for region in regions
        },
        iam=session.client("iam", region_name=regions[0], config=config),
    )


def find(sm: SecretsManagerClient, *, name: str, tag_key: str = FLEET_TAG) -> list[App]:
    """Return the secrets tagged ``tag_key=name`` in ``sm``'s region, by name.

    Raises
    ------
    SecretUnavailableError
        The secrets cannot be listed (exit code 1).
    """
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - optional

    region = sm.meta.region_name
    filters: list[FilterTypeDef] = [
        {"Key": "tag-key", "Values": [tag_key]},
        {"Key": "tag-value", "Values": [name]},
    ]
    found: list[App] = []
    try:
        pages = sm.get_paginator("list_secrets").paginate(
            Filters=filters,
            PaginationConfig={"PageSize": 100, "MaxItems": 100 * MAX_LIST_PAGES},
        )
        for page in pages:
            for entry in page.get("SecretList", []):
                tags = {t.get("Key"): t.get("Value") for t in entry.get("Tags", [])}
                if tags.get(tag_key) == name:  # the filters match prefixes, and apart
                    secret = entry.get("Name", entry["ARN"])
                    stack = tags.get(STACK_TAG) or secret
                    found.append(App(stack, region, entry["ARN"], secret))
        if pages.resume_token:
            _console.err(
                f"status --fleet: WARNING: more than {100 * MAX_LIST_PAGES} secrets carry the tag "
                f"in {region}; only the first {100 * MAX_LIST_PAGES} are read"
            )
    except (ClientError, BotoCoreError) as err:
        fix = _aws.advice(err, "check the region and that you may call secretsmanager:ListSecrets")
        msg = f"cannot list the secrets in {region} ({_aws.error_code(err)}): {fix}"
        raise SecretUnavailableError(msg) from None
    return sorted(found, key=lambda app: (app.name, app.arn))


class Progress:
    """``checked 120/200`` on stderr, at most every ``every`` seconds (never a secret)."""

    def __init__(
        self,
        total: int,
        *,
        every: float = PROGRESS_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        write: Callable[[str], None] = _console.err,
    ) -> None:
        self.total, self.done, self.every = total, 0, every
        self.clock, self.write = clock, write
        self.last = clock()
        self.shown = False
        self._lock = threading.Lock()

    def tick(self) -> None:
        """Count one app; show the count if ``every`` seconds passed since the last line."""
        with self._lock:
            self.done += 1
            now = self.clock()
            if now - self.last >= self.every or (self.shown and self.done == self.total):
                self.last, self.shown = now, True
                self.write(f"status --fleet: checked {self.done}/{self.total} apps")


def check(
    apps: Sequence[App],
    *,
    clients: Clients,
    now: datetime,
    workers: int = DEFAULT_WORKERS,
    progress: Progress | None = None,
) -> list[Checked]:
    """Read every app as ``status`` does, ``workers`` at a time; unhealthy first, then by name."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - optional

    def one(app: App) -> Checked:
        try:
            report = _status.collect(
                app.arn,
                now=now,
                sm=clients.secrets_manager[app.region],
                iam=clients.iam,
                last_used=False,
            )
            checked = Checked(app, report, list(report.problems))
        except (SesSmtpCredentialsError, ClientError, BotoCoreError) as err:
            text = str(err) if isinstance(err, SesSmtpCredentialsError) else None
            message = text or f"cannot be read ({_aws.error_code(err)})"
            checked = Checked(app, None, [Problem("unreadable", message)])
        except Exception as err:  # noqa: BLE001 - one odd app never ends the fleet's run
            # Only the class: an unexpected error's text is not known to be free of values.
            message = f"cannot be read ({type(err).__name__}): see status --secret-id"
            checked = Checked(app, None, [Problem("unreadable", message)])
        if progress is not None:
            progress.tick()
        return checked

    quiet_sdk_loggers()  # botocore at DEBUG would log GetSecretValue's answers
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="status-fleet") as pool:
        found = list(pool.map(one, apps))
    return sorted(found, key=lambda c: (c.healthy, c.app.name, c.app.region, c.app.arn))


def run(
    args: argparse.Namespace, *, clients_for: Callable[[Sequence[str], int], Clients] | None = None
) -> int:
    """Run ``status``: for one secret, or with ``--fleet`` for every app of the fleet.

    Raises
    ------
    UsageError
        A bad fleet name or tag key (exit code 2).
    SecretUnavailableError
        The secrets of a region cannot be listed (exit code 1).
    """
    if args.fleet is None:
        if args.tag_key is not None or args.workers is not None:
            msg = "--tag-key and --workers go with --fleet, not with --secret-id"
            raise UsageError(msg)
        return _status.run(args)
    tag_key, workers = args.tag_key or FLEET_TAG, args.workers or DEFAULT_WORKERS
    try:
        name = fleet_name(args.fleet)
    except argparse.ArgumentTypeError as err:
        msg = f"argument --fleet: {err}"
        raise UsageError(msg) from None
    regions = _status.given_regions(args.region) or [_aws.region()]
    clients = (clients_for or build_clients)(regions, workers)
    apps = [
        app
        for region in regions
        for app in find(clients.secrets_manager[region], name=name, tag_key=tag_key)
    ]
    where = ", ".join(regions)
    _console.err(f"status --fleet: {len(apps)} apps tagged {tag_key}={name} in {where}")
    checked = check(
        apps, clients=clients, now=datetime.now(UTC), workers=workers, progress=Progress(len(apps))
    )
    fleet = _status_fleet_render.Fleet(
        name=name,
        tag_key=tag_key,
        regions=regions,
        checked=checked,
        show_key_ids=args.show_key_ids,
        # One trail check per region, as status makes for one secret (a warning at most).
        notices=[_status_trail.check(region) for region in regions],
    )
    _console.out(fleet.as_json_text() if args.json else fleet.as_text())
    return _console.EXIT_OK if fleet.healthy else _console.EXIT_FAILED
