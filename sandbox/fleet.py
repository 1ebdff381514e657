"""Apps of a fleet in one local world, as ``fleet/app.yaml`` would create them.

Each app has its own IAM user under the fleet's path, allowed only ``ses:SendRawEmail``, and its
own secret, tagged for the fleet, holding the bootstrap value; rotation is enabled on it with the
world's function. The world's function runs in fleet mode when the world was started with
:func:`fleet_env` as its ``function_env``. An app is returned as a :class:`~sandbox.world.World`
of its own (same services, same SMTP server, its user, secret and driver), so everything a world
offers (rotate, sweep, login, access keys, invariants) works per app.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Final

from sandbox import apps
from sandbox.secrets_manager import SecretsManagerDriver

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sandbox.world import World

USER_PATH: Final = "/ses-smtp/"
TAG_KEY: Final = "ses-smtp-rotation:fleet"
FLEET_NAME: Final = "default"


def fleet_env(
    *,
    user_path: str = USER_PATH,
    name: str = FLEET_NAME,
    more: Mapping[str, str | None] | None = None,
) -> dict[str, str | None]:
    """Return a world's ``function_env`` for fleet mode (no SECRET_ARN, no SMTP_IAM_USER_NAME)."""
    return {
        "SECRET_ARN": None,
        "SMTP_IAM_USER_NAME": None,
        "FLEET_USER_PATH": user_path,
        "FLEET_TAG_VALUE": name,
        **dict(more or {}),
    }


def add_app(  # noqa: PLR0913 - every option is keyword-only and has a default
    world: World,
    name: str,
    *,
    user_path: str = USER_PATH,
    tags: Mapping[str, str] | None = None,
    bootstrap: Mapping[str, Any] | None = None,
    bound: bool = True,
) -> World:
    """Create an app (user ``name`` under ``user_path``, secret ``<name>-smtp``); return its world.

    ``tags`` are the secret's tags (default: the fleet's tag); ``bootstrap`` adds keys to the
    secret's bootstrap value; ``bound=False`` makes the user as by hand, bound to no secret.
    """
    value = {
        "iam_user_name": name,
        "region": world.region,
        "host": world.ses.host,
        "port": world.ses.port,
        **dict(bootstrap or {}),
    }
    secret_tags = {TAG_KEY: FLEET_NAME} if tags is None else tags
    arn = apps.create_app(
        world.iam,
        world.sm,
        user_name=name,
        secret_name=f"{name}-smtp",
        value=value,
        path=user_path,
        secret_tags=secret_tags,
        bound=bound,
    )
    driver = SecretsManagerDriver(
        secret_id=arn,
        handler=world.driver.handler,
        region=world.region,
        account_id=world.driver.account_id,
        lambda_timeout=world.driver.lambda_timeout,
    )
    driver.enable_rotation()
    return dataclasses.replace(world, user_name=name, secret_arn=arn, driver=driver)
