"""Fleet benchmark: N apps in one local world, rotated by one function with concurrency C.

Each app is what ``fleet/app.yaml`` deploys: an IAM user under the fleet's path and a secret
tagged with the fleet's name whose bootstrap value names the user. One function (fleet mode:
``FLEET_USER_PATH``, ``FLEET_TAG_KEY``, ``FLEET_TAG_VALUE``; no ``SECRET_ARN``) rotates them all
from a pool of C threads, C being the fleet template's ``FleetConcurrency``. Each thread runs
whole rotations through :class:`sandbox.secrets_manager.SecretsManagerDriver`, which retries a
failed rotation from createSecret with the same token, as Secrets Manager does. The function's
clients are throttled by :class:`sandbox.throttle.Throttle` (token buckets at AWS's rates), so
botocore's standard retry absorbs the "Rate exceeded" answers with its real back-off.

Every app is rotated ``rounds`` times (the first rotation replaces the bootstrap value, the
second deactivates the bootstrap key, from the third on each also deletes a key: the steady
state); after each round every invariant is checked for every app.
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from bench.rotation import quiet
from sandbox import invariants
from sandbox.apps import create_app
from sandbox.calls import count_calls
from sandbox.environments import execution_environments
from sandbox.secrets_manager import Rotation, RotationInProgressError, SecretsManagerDriver
from sandbox.throttle import AWS_LIMITS, THROTTLING_CODES, Limit, Throttle
from sandbox.trespass import Trespass
from sandbox.world import World, local_world
from tools import cfn_yaml

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from rotation_handler.app import Runtime

FLEET_TEMPLATE: Final = Path(__file__).resolve().parents[1] / "fleet" / "template.yaml"
DEFAULT_CONCURRENCY: Final = 10
USER_PATH: Final = "/ses-smtp/"
TAG_KEY: Final = "ses-smtp-rotation:fleet"
TAG_VALUE: Final = "bench"
SIZES: Final = (25, 50, 100, 200)
ROUNDS: Final = 3
# Attempts Secrets Manager makes at one rotation (the first and the same-token retries), and the
# pause before a retry (the service waits too; it lets the buckets fill again).
MAX_ATTEMPTS: Final = 5
RETRY_PAUSE_SECONDS: Final = 1.0
FLEET_ENV: Final[dict[str, str | None]] = {
    "SECRET_ARN": None,
    "SMTP_IAM_USER_NAME": None,
    "FLEET_USER_PATH": USER_PATH,
    "FLEET_TAG_KEY": TAG_KEY,
    "FLEET_TAG_VALUE": TAG_VALUE,
}


_MAX_CHAIN: Final = 10  # exceptions followed along __cause__ / __context__


def template_concurrency(path: Path = FLEET_TEMPLATE) -> tuple[int, str]:
    """Return C, the fleet function's reserved concurrency, and where the figure comes from.

    That is the default of the fleet template's ``FleetConcurrency`` parameter, or
    :data:`DEFAULT_CONCURRENCY` when there is no fleet template (or it has no such default).
    """
    fallback = f"default {DEFAULT_CONCURRENCY}: {path.parent.name}/{path.name} not found"
    if not path.is_file():
        return DEFAULT_CONCURRENCY, fallback
    loaded = cfn_yaml.parse(path.read_text(encoding="utf-8"))
    parameter = (loaded or {}).get("Parameters", {}).get("FleetConcurrency", {})
    default = parameter.get("Default") if isinstance(parameter, dict) else None
    try:
        value = int(default)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return DEFAULT_CONCURRENCY, (
            f"default {DEFAULT_CONCURRENCY}: {path.parent.name}/{path.name} has no "
            "FleetConcurrency default"
        )
    return value, f"{path.parent.name}/{path.name} FleetConcurrency default"


@dataclass(frozen=True, kw_only=True)
class App:
    """One app of the fleet: its user, its secret, and a world view bound to them."""

    name: str
    world: World

    @property
    def user_name(self) -> str:
        """The app's IAM user."""
        return self.world.user_name

    @property
    def secret_arn(self) -> str:
        """The app's secret."""
        return self.world.secret_arn


def add_apps(world: World, count: int, *, tag_value: str = TAG_VALUE) -> list[App]:
    """Create ``count`` apps as ``fleet/app.yaml`` would; each gets its own driver."""
    made = []
    for number in range(count):
        name = f"app-{number:04d}"
        user = f"{name}-smtp"
        value: dict[str, object] = {"iam_user_name": user, "region": world.region}
        value |= {"host": world.ses.host, "port": world.ses.port}
        arn = create_app(
            world.iam,
            world.sm,
            user_name=user,
            secret_name=f"ses-smtp/{name}",
            value=value,
            path=USER_PATH,
            secret_tags={TAG_KEY: tag_value},
        )
        driver = SecretsManagerDriver(
            secret_id=arn, handler=world.driver.handler, region=world.region
        )
        driver.enable_rotation()
        view = dataclasses.replace(world, user_name=user, secret_arn=arn, driver=driver)
        made.append(App(name=name, world=view))
    return made


@dataclass(frozen=True, kw_only=True)
class Round:
    """One rotation of every app of the fleet."""

    number: int
    seconds: float
    calls: dict[str, int]
    rotations: int
    completed: int
    retried: int
    failed_attempts: dict[str, int]
    violations: list[str]

    @property
    def calls_per_rotation(self) -> float:
        """Logical AWS calls (those that reached the service) per rotation, retries included."""
        return sum(self.calls.values()) / self.rotations


@dataclass(frozen=True, kw_only=True)
class FleetRun:
    """Every round of one fleet size, and what the throttle saw."""

    apps: int
    concurrency: int
    environments: int
    rounds: list[Round]
    watched_calls: int
    throttled: dict[str, int]
    absorbed: dict[str, int]
    exhausted: dict[str, int]
    limits: tuple[Limit, ...] = ()

    @property
    def violations(self) -> list[str]:
        """Every invariant violation of every round."""
        return [problem for r in self.rounds for problem in r.violations]

    @property
    def steady(self) -> Round:
        """The last round (the steady state once there are three or more)."""
        return self.rounds[-1]


def _cause(error: BaseException | None) -> str:
    """Name why an attempt failed: the throttled call, or the exception type (never its text)."""
    seen, depth = error, 0
    while seen is not None and depth < _MAX_CHAIN:
        depth += 1
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            if code in THROTTLING_CODES:
                operation = getattr(seen, "operation_name", "?")
                return f"{operation} throttled (botocore's retries exhausted)"
        seen = seen.__cause__ or seen.__context__
    return type(error).__name__


def rotate_round(
    apps: Sequence[App], *, pool: ThreadPoolExecutor, number: int, trespass: Trespass
) -> Round:
    """Rotate every app once from the ``pool``'s threads; check every invariant afterwards."""

    def rotate(app: App) -> Rotation:
        secrets = {app.secret_arn, f"ses-smtp/{app.name}"}
        with trespass.rotating(app.name, user=app.user_name, secrets=secrets):
            try:
                return app.world.driver.rotate(
                    max_attempts=MAX_ATTEMPTS,
                    before_retry=lambda _: time.sleep(RETRY_PAUSE_SECONDS),
                )
            except RotationInProgressError:
                # An earlier round left this app's rotation unfinished: no attempt, not done.
                return Rotation(token="")

    world = apps[0].world
    trespassed = len(trespass.problems)
    with count_calls(account_id=world.driver.account_id, region=world.region) as calls:
        started = time.perf_counter()
        rotations = list(pool.map(rotate, apps))
        seconds = time.perf_counter() - started
    failed: dict[str, int] = {}
    for rotation in rotations:
        for attempt in rotation.attempts:
            if not attempt.ok:
                cause = _cause(attempt.error)
                failed[cause] = failed.get(cause, 0) + 1
    violations = [
        f"{app.name}: {problem}" for app in apps for problem in invariants.violations(app.world)
    ]
    violations += invariants.cross_app_violations([app.world for app in apps])
    violations += [
        f"{app.name}: rotation did not complete"
        for app, rotation in zip(apps, rotations, strict=True)
        if not rotation.ok
    ]
    violations += trespass.problems[trespassed:]
    return Round(
        number=number,
        seconds=seconds,
        calls=dict(calls),
        rotations=len(rotations),
        completed=sum(1 for r in rotations if r.ok),
        retried=sum(1 for r in rotations if len(r.attempts) > 1),
        failed_attempts=failed,
        violations=violations,
    )


def run_fleet(
    apps: int,
    *,
    concurrency: int,
    rounds: int = ROUNDS,
    limits: Iterable[Limit] = AWS_LIMITS,
) -> FleetRun:
    """Build a world of ``apps`` apps and rotate them all ``rounds`` times under throttling."""
    throttle = Throttle(limits)
    trespass = Trespass()
    results: list[Round] = []
    hooked: list[Any] = []

    def hook(runtime: Runtime) -> None:
        # A new execution environment: its clients meet AWS's rates and are watched.
        for client in (runtime.sm, runtime.iam):
            throttle.attach(client)
            trespass.attach(client)
            hooked.append(client)

    with local_world(function_env=FLEET_ENV) as world, quiet():
        fleet = add_apps(world, apps)
        try:
            # One pool for every round: its threads are the warm execution environments.
            with (
                execution_environments(on_runtime=hook) as environments,
                ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="fleet") as pool,
            ):
                results.extend(
                    rotate_round(fleet, pool=pool, number=number, trespass=trespass)
                    for number in range(1, rounds + 1)
                )
        finally:
            for client in hooked:
                throttle.detach(client)
                trespass.detach(client)
    return FleetRun(
        apps=apps,
        concurrency=concurrency,
        environments=len(environments),
        rounds=results,
        watched_calls=trespass.checked,
        limits=throttle.limits,
        throttled=dict(throttle.throttled),
        absorbed=dict(throttle.absorbed),
        exhausted=dict(throttle.exhausted),
    )


def run_sizes(
    sizes: Sequence[int] = SIZES, *, concurrency: int, rounds: int = ROUNDS
) -> list[FleetRun]:
    """Run the fleet benchmark at each size, smallest first."""
    return [run_fleet(n, concurrency=concurrency, rounds=rounds) for n in sorted(sizes)]
