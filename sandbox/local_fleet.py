"""``make local LOCAL_ARGS="--fleet N"``: a small fleet beside the local world's own secret.

N apps as ``fleet/app.yaml`` deploys them: a user under the fleet's path (:data:`USER_PATH`), bound
to its secret, and the secret tagged ``ses-smtp-rotation:fleet=`` :data:`FLEET_NAME` with the
bootstrap value ``{"iam_user_name": ...}`` (host, port and region come from the function's
environment, as for the world's own secret). Each app is rotated once at start-up, in this
process, by the rotation function in fleet mode (``FLEET_USER_PATH``, ``FLEET_TAG_VALUE``; no
``SECRET_ARN``; its own variables and cold-start runtime, swapped in for each run), so that
``ses-smtp-rotator status --fleet local`` finds a healthy fleet. A later ``RotateSecret`` on an
app's secret runs the same way, through :mod:`sandbox.rotation_service`; rotate one secret at a
time (the swap is process-wide).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Final

from sandbox.events import STEPS
from sandbox.local_commands import FAKE_CREDENTIALS
from ses_smtp_rotator.contract import FLEET_TAG

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sandbox.rotation_service import Service
    from sandbox.secrets_manager import Handler

FLEET_NAME: Final = "local"
USER_PATH: Final = "/ses-smtp/"
MAX_APPS: Final = 50  # a small fleet: start-up rotates every app, one after the other
FLEET_MODE: Final[dict[str, str | None]] = {
    "SECRET_ARN": None,
    "SMTP_IAM_USER_NAME": None,
    "FLEET_USER_PATH": USER_PATH,
    "FLEET_TAG_VALUE": FLEET_NAME,
}


def apps_count(text: str) -> int:
    """Parse ``--fleet N``: a number of apps from 1 to :data:`MAX_APPS`."""
    if not text.isdigit() or not 1 <= int(text) <= MAX_APPS:
        msg = f"must be a number of apps from 1 to {MAX_APPS}"
        raise argparse.ArgumentTypeError(msg)
    return int(text)


def clients(endpoint: str, region: str) -> dict[str, Any]:
    """Return the world's ``iam`` and ``secretsmanager`` clients (the fake credentials)."""
    import boto3  # noqa: PLC0415 - imported after the arguments parse, as moto

    session = boto3.session.Session(
        region_name=region,
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
    )
    return {name: session.client(name, endpoint_url=endpoint) for name in ("iam", "secretsmanager")}


def app_names(count: int) -> list[str]:
    """Return the apps' names (also their users' names): ``app-01`` …."""
    return [f"app-{number:02d}" for number in range(1, count + 1)]


def add_fleet(
    count: int,
    *,
    world: Mapping[str, Any],
    region: str,
    handler: Handler,
) -> list[Service]:
    """Create ``count`` apps and rotate each once in fleet mode; return what serves them.

    ``world`` holds the world's ``iam`` and ``secretsmanager`` clients (:func:`clients`);
    ``handler`` is the rotation function as this process runs it. Each app's ``RotateSecret``
    runs through :mod:`sandbox.rotation_service` (its logs go to the function's log group, not to
    the terminal); the caller withdraws the returned services when the world stops.

    Raises
    ------
    RuntimeError
        An app's first rotation failed (its error names the step and the exception's type);
        nothing is served any more.
    """
    from sandbox import rotation_service  # noqa: PLC0415 - imports moto, as sandbox.local does
    from sandbox.apps import create_app  # noqa: PLC0415 - as above
    from sandbox.moto_world import FunctionEnvironment  # noqa: PLC0415 - as above
    from sandbox.secrets_manager import SecretsManagerDriver  # noqa: PLC0415 - as above

    # The fleet's function: its own variables and cold-start runtime, swapped in for each run,
    # so that it and the world's own function never share settings or clients.
    function = FunctionEnvironment(dict(FLEET_MODE))

    def in_fleet_mode(event: dict[str, Any], context: Any) -> object:  # noqa: ANN401 - Lambda
        with function.entered():
            return handler(event, context)

    services = []
    for name in app_names(count):
        arn = create_app(
            world["iam"],
            world["secretsmanager"],
            user_name=name,
            secret_name=f"{name}-smtp",
            value={"iam_user_name": name},
            path=USER_PATH,
            # CloudFormation tags what it creates with its stack's name: the app's name.
            secret_tags={FLEET_TAG: FLEET_NAME, "aws:cloudformation:stack-name": name},
        )
        driver = SecretsManagerDriver(secret_id=arn, handler=in_fleet_mode, region=region)
        driver.enable_rotation()
        service = rotation_service.serve(driver)
        services.append(service)
        service.begin(driver.start())
        service.join()
        failed = [record for record in driver.history if not record.ok]
        if failed or len(driver.history) != len(STEPS):
            for made in services:
                rotation_service.withdraw(made)
            cause = f"{failed[0].step}: {type(failed[0].error).__name__}" if failed else "no end"
            msg = f"the first rotation of {name} failed ({cause})"
            raise RuntimeError(msg)
    return services


def fleet_commands() -> list[str]:
    """Return the lines to try on the fleet: its status, for people and as JSON."""
    return [
        f"ses-smtp-rotator status --fleet {FLEET_NAME}",
        f"ses-smtp-rotator status --fleet {FLEET_NAME} --json",
    ]
