"""``make local --fleet N``'s fleet, in-process: its apps, their first rotation, its failure."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import pytest

from sandbox import local_fleet, rotation_service
from ses_smtp_rotator.cli import EXIT_OK, main
from tests import leakscan

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sandbox.rotation_service import Service
    from sandbox.world import World


@pytest.fixture
def served(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Service]]:
    """What serves the fleet's apps (withdrawn after the test), in a world for ``make local``.

    As in ``make local``, the function's environment names the SMTP server (the apps' bootstrap
    values hold only their user, as ``fleet/app.yaml`` writes them).
    """
    monkeypatch.setenv("SMTP_HOST", world.ses.host)
    monkeypatch.setenv("SMTP_PORT", str(world.ses.port))
    services: list[Service] = []
    yield services
    for service in services:
        rotation_service.withdraw(service)


def test_each_app_is_made_as_its_stack_does_and_rotated_once_in_fleet_mode(
    world: World, served: list[Service], capfd: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the world's single-secret function environment
    before = {name: os.environ.get(name) for name in local_fleet.FLEET_MODE}
    # WHEN a fleet of two is added
    clients = {"iam": world.iam, "secretsmanager": world.sm}
    served += local_fleet.add_fleet(
        2, world=clients, region=world.region, handler=world.driver.handler
    )
    # THEN each app's user sits under the fleet's path and its secret holds rotated credentials
    for name in local_fleet.app_names(2):
        assert world.iam.get_user(UserName=name)["User"]["Path"] == local_fleet.USER_PATH
        value = json.loads(world.sm.get_secret_value(SecretId=f"{name}-smtp")["SecretString"])
        assert value["iam_user_name"] == name
        assert value["access_key_id"]
    # AND the function's environment is the world's again
    assert {name: os.environ.get(name) for name in local_fleet.FLEET_MODE} == before
    # AND status --fleet local, as printed, finds both apps healthy
    capfd.readouterr()
    command = local_fleet.fleet_commands()[1].split()[1:]
    assert main(command) == EXIT_OK
    out, err = capfd.readouterr()
    assert leakscan.find_leaks([out, err], world.secret_material()) == []
    found = json.loads(out)
    assert [app["app"] for app in found["apps"]] == ["app-01", "app-02"]


def test_a_failed_first_rotation_stops_the_start_up_naming_the_app(
    world: World, served: list[Service]
) -> None:
    # GIVEN a function that fails createSecret
    def failing(event: dict[str, Any], context: Any) -> object:  # noqa: ARG001, ANN401 - Lambda's
        msg = "no"
        raise RuntimeError(msg)

    clients = {"iam": world.iam, "secretsmanager": world.sm}
    # WHEN the fleet is added / THEN the start-up stops and says which app and step failed
    with pytest.raises(RuntimeError, match=r"first rotation of app-01 failed \(createSecret: Runt"):
        local_fleet.add_fleet(1, world=clients, region=world.region, handler=failing)
    assert served == []
