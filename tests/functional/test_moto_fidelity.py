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


def test_listed_versions_keep_the_date_they_were_made(world: World) -> None:
    # GIVEN a version made an hour ago (moto keeps epoch seconds; time passing is played here)
    world.rotate()
    (current,) = _with(world, "AWSCURRENT")
    made = world.driver._secret().versions[current]["createdate"] - 3600
    world.driver._secret().versions[current]["createdate"] = made
    # WHEN the versions are listed / THEN that version's CreatedDate is when it was made
    listed = world.sm.list_secret_version_ids(SecretId=world.secret_arn)["Versions"]
    (entry,) = [v for v in listed if v["VersionId"] == current]
    assert int(entry["CreatedDate"].timestamp()) == made
