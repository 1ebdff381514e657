"""``status --fleet`` over N apps against the throttled local world: wall time, calls, the order.

A local world holds N apps as ``fleet/app.yaml`` deploys them (:func:`bench.fleet.add_apps`),
each rotated once by the fleet function, then three of them broken in different ways
(:data:`BROKEN`): rotation turned off, a rotation stuck (an empty ``AWSPENDING`` two hours old)
and AWSCURRENT's key deleted by hand. ``status --fleet`` then runs as an operator types it (its
JSON output), its clients attached to :class:`sandbox.throttle.Throttle` at :data:`STATUS_LIMITS`
(AWS's rates, and the list calls' assumed below), so that botocore's adaptive retry meets real
"Rate exceeded" answers. Then the fix it printed for each broken app runs, and ``status
--fleet`` once more must find the fleet healthy (exit 0).

Measured: the wall time of the command, the AWS calls that reached the service (per API), the
throttled answers, and whether exactly the broken apps came first. The goal is the issue's "200
apps in well under a minute": :data:`WALL_GOAL`.
"""

from __future__ import annotations

import contextlib
import io
import json
import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Final

from bench.fleet import FLEET_ENV, TAG_KEY, TAG_VALUE, App, add_apps
from bench.report import Goal, Row, judged
from bench.rotation import quiet
from sandbox.aws_cli import aws
from sandbox.calls import count_calls
from sandbox.environments import execution_environments
from sandbox.throttle import AWS_LIMITS, Limit, Throttle
from sandbox.world import local_world
from ses_smtp_rotator import _status_fleet
from ses_smtp_rotator.cli import build_parser

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

APPS: Final = 200
# Secrets Manager publishes no separate rate for its list APIs here: assumed on the low side.
LIST_RATE: Final = 50.0
STATUS_LIMITS: Final = (
    *AWS_LIMITS,
    Limit(
        name="Secrets Manager ListSecrets, ListSecretVersionIds (assumed)",
        rate=LIST_RATE,
        operations=frozenset({"SecretsManager.ListSecrets", "SecretsManager.ListSecretVersionIds"}),
    ),
)
WALL_GOAL: Final = Goal(limit=30, text="well under a minute (<= 30 s)")
ORDER_GOAL: Final = Goal(limit=1, op=">=", text="exactly the broken apps, first")
FIXED_GOAL: Final = Goal(limit=1, op=">=", text="healthy after the printed fixes: exit 0")
SETUP_THREADS: Final = 8
STUCK_AGE_SECONDS: Final = 7200
BROKEN: Final = ("rotation-off", "rotation-stuck", "current-key-missing")


@dataclass(frozen=True, kw_only=True)
class StatusRun:
    """One ``status --fleet`` over ``apps`` apps."""

    apps: int
    workers: int
    seconds: float
    exit_code: int
    calls: dict[str, int]
    throttled: dict[str, int]
    absorbed: dict[str, int]
    exhausted: dict[str, int]
    broken: list[str]  # the apps broken on purpose, by name
    first: list[str]  # the apps listed first, as many as were broken
    codes: dict[str, list[str]]  # the problems listed for each unhealthy app
    fixed_exit_code: int  # status --fleet again, after the printed fix of each app ran
    fixed_unhealthy: int

    @property
    def found_first(self) -> bool:
        """Whether the unhealthy apps are exactly the broken ones, listed first."""
        return sorted(self.first) == sorted(self.broken) and set(self.codes) == set(self.broken)


def break_apps(apps: Sequence[App]) -> list[str]:
    """Break three apps in three ways (see the module docstring); return their names."""
    off, stuck, gone = apps[1], apps[len(apps) // 2], apps[-1]
    off.world.sm.cancel_rotate_secret(SecretId=off.secret_arn)
    token = stuck.world.driver.start()
    version = stuck.world.driver._secret().versions[token]  # noqa: SLF001 - time passing
    version["createdate"] = int(time.time() - STUCK_AGE_SECONDS)
    key = gone.world.value()["access_key_id"]
    gone.world.iam.delete_access_key(UserName=gone.user_name, AccessKeyId=key)
    return [off.name, stuck.name, gone.name]


def run_status(
    apps: int = APPS,
    *,
    workers: int = _status_fleet.DEFAULT_WORKERS,
    limits: Iterable[Limit] = STATUS_LIMITS,
) -> StatusRun:
    """Build the fleet, break three apps, run ``status --fleet --json`` under throttling."""
    throttle = Throttle(limits)
    hooked: list[Any] = []

    def clients_for(regions: Sequence[str], count: int) -> _status_fleet.Clients:
        clients = _status_fleet.build_clients(regions, count)
        hooked.extend([*clients.secrets_manager.values(), clients.iam])
        for client in hooked:
            throttle.attach(client)
        return clients

    with local_world(function_env=FLEET_ENV) as world, quiet():
        fleet = add_apps(world, apps)
        # The apps' stacks are named as the apps: status shows an app by its stack's name.
        for app in fleet:
            world.sm.tag_resource(
                SecretId=app.secret_arn,
                Tags=[{"Key": _status_fleet.STACK_TAG, "Value": app.name}],
            )
        # Each thread is an execution environment of its own, as Lambda's concurrent runs are.
        with (
            execution_environments(),
            ThreadPoolExecutor(max_workers=SETUP_THREADS) as pool,
        ):
            if not all(r.ok for r in pool.map(lambda a: a.world.driver.rotate(), fleet)):
                msg = "a rotation of the set-up failed"
                raise RuntimeError(msg)
        broken = break_apps(fleet)
        argv = ["status", "--fleet", TAG_VALUE, "--tag-key", TAG_KEY, "--json"]
        args = build_parser().parse_args([*argv, "--workers", str(workers)])
        out, err = io.StringIO(), io.StringIO()
        with (
            count_calls(account_id=world.driver.account_id, region=world.region) as calls,
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            started = time.perf_counter()
            code = _status_fleet.run(args, clients_for=clients_for)
            seconds = time.perf_counter() - started
        found = json.loads(out.getvalue())
        run_fixes(found, fleet)
        again = io.StringIO()
        with contextlib.redirect_stdout(again), contextlib.redirect_stderr(io.StringIO()):
            fixed_code = _status_fleet.run(args, clients_for=clients_for)
        for client in hooked:
            throttle.detach(client)
    fixed = json.loads(again.getvalue())
    unhealthy = [a for a in found["apps"] if not a["healthy"]]
    return StatusRun(
        apps=apps,
        workers=workers,
        seconds=seconds,
        exit_code=code,
        calls=dict(calls),
        throttled=dict(throttle.throttled),
        absorbed=dict(throttle.absorbed),
        exhausted=dict(throttle.exhausted),
        broken=broken,
        first=[a["app"] for a in found["apps"][: len(broken)]],
        codes={a["app"]: [p["code"] for p in a["problems"]] for a in unhealthy},
        fixed_exit_code=fixed_code,
        fixed_unhealthy=fixed["counts"]["unhealthy"],
    )


def run_fixes(found: dict[str, Any], fleet: Sequence[App]) -> None:
    """Run the printed fix of each unhealthy app, as an operator would type it.

    ``aws secretsmanager rotate-secret`` is played by the app's rotation driver (moto's
    RotateSecret does not run the function here); every other line runs through boto3.
    """
    by_arn = {app.secret_arn: app for app in fleet}
    for listed in found["apps"]:
        if listed["healthy"]:
            continue
        for command in listed["problems"][0]["fix"]:
            argv = shlex.split(command)
            if argv[:3] == ["aws", "secretsmanager", "rotate-secret"]:
                if not by_arn[argv[4]].world.driver.rotate().ok:
                    msg = f"the fix of {listed['app']} did not rotate"
                    raise RuntimeError(msg)
            else:
                aws(command)


def status_rows(run: StatusRun) -> tuple[list[Row], dict[str, Any]]:
    """Return the rows of one run (wall time against the goal, calls, throttles, the order)."""
    label = f"status --fleet, N = {run.apps}, {run.workers} workers"
    total = sum(run.calls.values())
    by_api = ", ".join(
        f"{name.split('.', 1)[1]} {count}"
        for name, count in sorted(run.calls.items(), key=lambda item: (-item[1], item[0]))
    )
    throttled, absorbed = sum(run.throttled.values()), sum(run.absorbed.values())
    out_of_retries = sum(run.exhausted.values())
    order = ", ".join(f"{app} ({'/'.join(run.codes.get(app, []))})" for app in run.first)
    rows = [
        judged(
            f"{label}: wall time (throttled local world)",
            f"{run.seconds:.1f} s",
            value=run.seconds,
            goal=WALL_GOAL,
        ),
        Row(
            measure=f"{label}: AWS calls, throttles",
            figure=f"{total} calls ({total / run.apps:.1f} per app: {by_api}); {absorbed} of "
            f"{throttled} throttled answers absorbed, {out_of_retries} calls out of retries",
        ),
        judged(
            f"{label}: the {len(run.broken)} broken apps listed first, exit {run.exit_code}",
            order,
            value=float(run.found_first and run.exit_code == 1),
            goal=ORDER_GOAL,
        ),
        judged(
            f"{label}: after each printed fix ran, exit {run.fixed_exit_code}",
            f"{run.fixed_unhealthy} unhealthy",
            value=float(run.fixed_exit_code == 0 and run.fixed_unhealthy == 0),
            goal=FIXED_GOAL,
        ),
    ]
    data = asdict(run) | {"found_first": run.found_first}
    return rows, data
