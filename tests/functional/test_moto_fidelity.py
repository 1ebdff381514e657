"""moto's default version follows AWSCURRENT, as the service has only the label."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sandbox.world import World


def _with(world: World, label: str) -> list[str]:
    return [version for version, labels in world.driver.stages().items() if label in labels]


def test_a_plain_read_after_a_rotation_returns_awscurrent(world: World) -> None:
    world.rotate()
    plain = world.sm.get_secret_value(SecretId=world.secret_arn)
    assert [plain["VersionId"]] == _with(world, "AWSCURRENT")
    assert json.loads(plain["SecretString"]) == world.value()


def test_putting_a_value_as_awscurrent_after_a_rotation_leaves_one_awscurrent(
    world: World,
) -> None:
    world.rotate()
    rotated = _with(world, "AWSCURRENT")
    adopted = world.sm.put_secret_value(
        SecretId=world.secret_arn,
        SecretString=json.dumps(world.value() | {"note": "adopted"}),
        VersionStages=["AWSCURRENT"],
    )["VersionId"]
    assert _with(world, "AWSCURRENT") == [adopted]
    assert _with(world, "AWSPREVIOUS") == rotated
