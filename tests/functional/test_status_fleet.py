"""``ses-smtp-rotator status --fleet NAME``: every app of a fleet, the unhealthy ones first.

A local fleet (:mod:`sandbox.fleet`: one function in fleet mode, apps added with their user under
the fleet's path and their secret tagged ``ses-smtp-rotation:fleet=default``) has every app
rotated, then some broken as an operator would find them. ``status --fleet`` must list exactly
the broken ones first, each with its runbook command; the test runs those commands as printed and
``status --fleet`` then exits 0. The fleet's 200-app run lives in ``make bench``
(``bench/fleet_status.py``): here a handful of apps is enough.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

import boto3
import pytest

from sandbox.aws_cli import aws
from sandbox.fleet import FLEET_NAME, TAG_KEY, add_app, fleet_env
from ses_smtp_rotator import _status_fleet
from ses_smtp_rotator.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from ses_smtp_rotator.exceptions import SecretUnavailableError
from tests import leakscan
from tests.functional.test_readme import readme_commands

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sandbox.world import World

STACK_TAG: Final = "aws:cloudformation:stack-name"
OTHER_REGION: Final = "eu-west-1"
Run = Callable[..., tuple[int, str, str]]  # run(*argv) -> (exit code, stdout, stderr)


@pytest.fixture
def fleet(make_world: Callable[..., World]) -> World:
    """A world whose function is in fleet mode (its own secret is not in the fleet)."""
    return make_world(function_env=fleet_env())


@pytest.fixture
def run(fleet: World, capfd: pytest.CaptureFixture[str]) -> Run:
    """Run the CLI; return its exit code, stdout and stderr, checked for leaks."""

    def call(*argv: str) -> tuple[int, str, str]:
        before = capfd.readouterr()
        code = main(list(argv))
        out, err = capfd.readouterr()
        texts = [before.out, before.err, out, err]
        assert leakscan.find_leaks(texts, fleet.secret_material()) == []
        return code, out, err

    return call


def apps_of(fleet: World, names: Sequence[str]) -> dict[str, World]:
    """Add and rotate one app per name; the secret carries its stack's name, as CloudFormation's."""
    made = {}
    for name in names:
        app = add_app(fleet, name, tags={TAG_KEY: FLEET_NAME, STACK_TAG: name})
        assert app.rotate().ok
        made[name] = app
    return made


def as_json(run: Run, *argv: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = run("status", "--fleet", FLEET_NAME, "--json", *argv)
    loaded: dict[str, Any] = json.loads(out)
    return code, loaded


def run_fix(apps: dict[str, World], command: str) -> None:
    """Run one printed command as an operator would (``rotate-secret``: the driver plays it)."""
    argv = shlex.split(command)
    if argv[:3] == ["aws", "secretsmanager", "rotate-secret"]:
        (app,) = [a for a in apps.values() if a.secret_arn == argv[4]]
        assert app.rotate().ok
    else:
        aws(command)


def break_three(apps: dict[str, World]) -> None:
    """Rotation turned off; a rotation stuck with an empty AWSPENDING; AWSCURRENT's key deleted."""
    apps["billing"].sm.cancel_rotate_secret(SecretId=apps["billing"].secret_arn)
    stuck = apps["crm"]
    token = stuck.driver.start()
    version = stuck.driver._secret().versions[token]  # time passing
    version["createdate"] = int(time.time() - timedelta(hours=2).total_seconds())
    gone = apps["shop"]
    key = gone.value()["access_key_id"]
    gone.iam.delete_access_key(UserName=gone.user_name, AccessKeyId=key)
    assert not gone.login().ok  # the apps' credentials no longer log in


def test_three_broken_apps_come_first_with_their_fix_and_the_fixes_heal_the_fleet(
    fleet: World, run: Run
) -> None:
    # GIVEN a fleet of six rotated apps, three of them broken in different ways
    apps = apps_of(fleet, ["accounts", "billing", "crm", "docs", "shop", "wiki"])
    break_three(apps)
    # WHEN status --fleet runs
    code, out, err = run("status", "--fleet", FLEET_NAME)
    # THEN it exits 1 and its first three app lines are the broken apps, each with its command
    assert code == EXIT_FAILED, out + err
    header, *lines = out.splitlines()
    assert (
        header == f"fleet {FLEET_NAME} ({TAG_KEY}={FLEET_NAME}) in us-east-1: 6 apps, 3 unhealthy"
    )
    *app_lines, notices = lines
    assert [line.split()[:2] for line in app_lines] == [
        ["UNHEALTHY", "billing"],
        ["UNHEALTHY", "crm"],
        ["UNHEALTHY", "shop"],
        ["healthy", "accounts"],
        ["healthy", "docs"],
        ["healthy", "wiki"],
    ]
    # AND the last line says whether notices can arrive in the region (no trail here: a warning)
    assert notices.startswith("notices        WARNING: rotation notices cannot arrive")
    assert "rotation-off: rotation is turned off" in lines[0]
    assert (
        f"$ aws secretsmanager rotate-secret --secret-id {apps['billing'].secret_arn}" in lines[0]
    )
    assert "rotation-stuck: rotation stuck: its pending version is still empty" in lines[1]
    assert (
        f"$ aws secretsmanager cancel-rotate-secret --secret-id {apps['crm'].secret_arn} && "
        in lines[1]
    )
    assert "current-key-missing: AWSCURRENT's key AKIA…" in lines[2]
    assert "6 apps tagged" in err
    # WHEN the fix of each app runs as --json prints it
    code, found = as_json(run)
    for app in found["apps"][:3]:
        for command in app["problems"][0]["fix"]:
            run_fix(apps, command)
    # THEN the fleet is healthy: exit 0, no unhealthy line
    code, out, _ = run("status", "--fleet", FLEET_NAME)
    assert code == EXIT_OK, out
    assert "6 apps, 0 unhealthy" in out
    assert "UNHEALTHY" not in out


def test_json_shape(fleet: World, run: Run) -> None:
    # GIVEN two apps, one with rotation turned off
    apps = apps_of(fleet, ["alpha", "beta"])
    apps["beta"].sm.cancel_rotate_secret(SecretId=apps["beta"].secret_arn)
    # WHEN status --fleet --json runs
    code, found = as_json(run)
    # THEN one object: the fleet, its counts, and each app as status sees it, unhealthy first
    assert code == EXIT_FAILED
    assert set(found) == {
        "schema", "fleet", "tag", "regions", "healthy", "counts", "apps", "notices"
    }  # fmt: skip
    assert [(n["region"], n["can_arrive"]) for n in found["notices"]] == [("us-east-1", False)]
    assert found["tag"] == {"key": TAG_KEY, "value": FLEET_NAME}
    assert found["regions"] == ["us-east-1"]
    assert (found["healthy"], found["counts"]) == (False, {"apps": 2, "unhealthy": 1})
    beta, alpha = found["apps"]
    assert set(beta) == {
        "app", "region", "secret", "healthy", "problems", "fix", "details", "status"
    }  # fmt: skip
    assert (beta["app"], beta["healthy"], alpha["app"], alpha["healthy"]) == (
        "beta", False, "alpha", True
    )  # fmt: skip
    assert beta["secret"] == {"arn": apps["beta"].secret_arn, "name": "beta-smtp"}
    assert [p["code"] for p in beta["problems"]] == ["rotation-off"]
    assert beta["fix"] == f"aws secretsmanager rotate-secret --secret-id {apps['beta'].secret_arn}"
    assert beta["details"] == f"ses-smtp-rotator status --secret-id {apps['beta'].secret_arn}"
    assert beta["status"]["rotation"]["enabled"] is False
    assert alpha["fix"] is None
    assert alpha["status"]["healthy"] is True


def test_a_secret_of_another_fleet_or_outside_is_not_listed(fleet: World, run: Run) -> None:
    # GIVEN an app of the fleet, one of a fleet whose name starts the same, one untagged
    apps_of(fleet, ["mine"])
    add_app(fleet, "theirs", tags={TAG_KEY: f"{FLEET_NAME}-2"})
    add_app(fleet, "loose", tags={})
    # WHEN status --fleet runs / THEN only the fleet's app is read (the tag filters match prefixes)
    code, found = as_json(run)
    assert code == EXIT_OK
    assert [app["app"] for app in found["apps"]] == ["mine"]


def test_an_app_that_cannot_be_read_is_its_problem_not_a_crash(
    fleet: World, capfd: pytest.CaptureFixture[str]
) -> None:
    # GIVEN three apps: one whose user was deleted, one whose secret the caller may not describe
    apps = apps_of(fleet, ["gone-user", "denied", "fine"])
    gone = apps["gone-user"]
    for key in gone.access_keys():
        gone.iam.delete_access_key(UserName=gone.user_name, AccessKeyId=key)
    gone.iam.delete_user_policy(UserName=gone.user_name, PolicyName="ses-send")
    gone.iam.delete_user(UserName=gone.user_name)
    denied = apps["denied"].secret_arn

    def clients_for(regions: Sequence[str], workers: int) -> _status_fleet.Clients:
        clients = _status_fleet.build_clients(regions, workers)
        for sm in clients.secrets_manager.values():
            sm.meta.events.register("before-call.secrets-manager.DescribeSecret", deny(denied))
        return clients

    # WHEN status --fleet runs with those clients
    args = _status_fleet_args("--json")
    capfd.readouterr()
    code = _status_fleet.run(args, clients_for=clients_for)
    out, err = capfd.readouterr()
    assert leakscan.find_leaks([out, err], fleet.secret_material()) == []
    found = json.loads(out)
    # THEN both are unhealthy, each with what went wrong; the third is read as usual
    assert code == EXIT_FAILED
    by_app = {app["app"]: app for app in found["apps"]}
    assert [app["app"] for app in found["apps"]] == ["denied", "gone-user", "fine"]
    (problem,) = by_app["denied"]["problems"]
    assert problem["code"] == "unreadable"
    assert "(AccessDeniedException)" in problem["message"]
    assert by_app["denied"]["fix"] == by_app["denied"]["details"]
    assert [p["code"] for p in by_app["gone-user"]["problems"]] == ["iam-unreadable"]
    assert "cannot be read (NoSuchEntity)" in by_app["gone-user"]["problems"][0]["message"]
    assert by_app["fine"]["healthy"]


def deny(arn: str) -> Callable[..., Any]:
    """A botocore hook answering AccessDenied for one secret, as an IAM policy would."""

    def hook(params: dict[str, Any], **_: Any) -> object:  # noqa: ANN401 - botocore hook
        if json.loads(params["body"]).get("SecretId") != arn:  # the serialized request
            return None
        error = {"Code": "AccessDeniedException", "Message": "not authorized"}
        return _Answer(400), {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}

    return hook


class _Answer:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


def _status_fleet_args(*argv: str) -> Any:  # noqa: ANN401 - argparse's Namespace
    from ses_smtp_rotator.cli import build_parser  # noqa: PLC0415

    return build_parser().parse_args(["status", "--fleet", FLEET_NAME, *argv])


def test_several_regions_repeated_or_as_a_list(fleet: World, run: Run) -> None:
    # GIVEN an app in the world's region and one whose secret is in another region
    apps_of(fleet, ["east"])
    far = boto3.client("secretsmanager", region_name=OTHER_REGION)
    far.create_secret(
        Name="west-smtp",
        SecretString=json.dumps({"iam_user_name": "west"}),
        Tags=[{"Key": TAG_KEY, "Value": FLEET_NAME}],
    )
    # WHEN status --fleet reads both regions, as a list or repeated
    for regions in (["--region", f"us-east-1,{OTHER_REGION}"],
                    ["--region", "us-east-1", "--region", OTHER_REGION]):  # fmt: skip
        code, found = as_json(run, *regions)
        # THEN both apps are there, each in its region; the one never rotated first
        assert code == EXIT_FAILED
        assert found["regions"] == ["us-east-1", OTHER_REGION]
        assert [(a["app"], a["region"]) for a in found["apps"]] == [
            ("west-smtp", OTHER_REGION),
            ("east", "us-east-1"),
        ]
        assert "never-rotated" in [p["code"] for p in found["apps"][0]["problems"]]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        pytest.param(["--secret-id", "x"], "not allowed with argument", id="fleet-and-secret-id"),
        pytest.param(["--workers", "2"], "", id="two-workers-are-fine"),
        pytest.param(["--region", "us-east"], "is not an AWS region name", id="bad-region"),
        pytest.param(["--workers", "0"], "from 1 to 32", id="no-workers"),
        pytest.param(["--tag-key", "a,b"], "must be a tag key", id="bad-tag-key"),
    ],
)
def test_bad_usage_exits_2(fleet: World, run: Run, argv: list[str], says: str) -> None:
    # GIVEN a fleet with one healthy app
    apps_of(fleet, ["solo"])
    # WHEN status --fleet runs with `argv` / THEN bad usage is one line and exit 2
    code, out, err = run("status", "--fleet", FLEET_NAME, *argv)
    if not says:
        assert code == EXIT_OK, out + err
        return
    assert code == EXIT_USAGE
    assert says in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("name", ["", "  ", "bad,name"], ids=["empty", "blank", "comma"])
def test_a_bad_fleet_name_exits_2(fleet: World, run: Run, name: str) -> None:
    code, _, err = run("status", "--fleet", name)
    assert code == EXIT_USAGE
    assert "argument --fleet: must be a fleet name" in err
    assert fleet.secret_arn


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        pytest.param(["--region", "us-east-1,eu-west-1"], "give one --region (several: --fleet)"),
        pytest.param(["--workers", "2"], "--tag-key and --workers go with --fleet"),
        pytest.param(["--tag-key", "team"], "--tag-key and --workers go with --fleet"),
    ],
)
def test_fleet_options_with_one_secret_exit_2(
    fleet: World, run: Run, argv: list[str], says: str
) -> None:
    code, _, err = run("status", "--secret-id", fleet.secret_arn, *argv)
    assert code == EXIT_USAGE
    assert says in err


def test_no_app_in_the_fleet_exits_1_and_says_what_to_check(fleet: World, run: Run) -> None:
    # GIVEN no secret tagged for the fleet / WHEN status --fleet runs / THEN exit 1 and why
    code, out, _ = run("status", "--fleet", "nobody")
    assert code == EXIT_FAILED
    assert "0 apps, 0 unhealthy" in out
    assert "no secret carries the tag here" in out
    assert fleet.secret_arn


def test_the_documented_fleet_commands_run_as_written(fleet: World, run: Run) -> None:
    # GIVEN a fleet whose apps are all rotated, and the status --fleet lines of the README and docs
    apps_of(fleet, ["billing-mail", "crm-mail"])
    documented = [c for c in readme_commands() if c.startswith("ses-smtp-rotator status --fleet")]
    assert len(documented) == 2  # the text output and the JSON one
    for command in documented:
        # WHEN each runs as written / THEN it exits 0 and shows both apps
        code, out, err = run(*shlex.split(command)[1:])
        assert code == EXIT_OK, out + err
        assert "billing-mail" in out
        assert "crm-mail" in out


def test_secrets_that_cannot_be_listed_exit_1_in_one_line(
    fleet: World, capfd: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a caller who may not call ListSecrets
    apps_of(fleet, ["hidden"])

    def clients_for(regions: Sequence[str], workers: int) -> _status_fleet.Clients:
        clients = _status_fleet.build_clients(regions, workers)
        for sm in clients.secrets_manager.values():
            sm.meta.events.register("before-call.secrets-manager.ListSecrets", refuse)
        return clients

    # WHEN status --fleet runs / THEN it fails with what to check (exit 1), not a traceback
    with pytest.raises(SecretUnavailableError, match=r"cannot list the secrets in us-east-1 \(Acc"):
        _status_fleet.run(_status_fleet_args(), clients_for=clients_for)
    capfd.readouterr()


def refuse(**_: Any) -> Any:  # noqa: ANN401 - botocore hook
    """A botocore hook answering AccessDenied to any call, as an IAM policy would."""
    error = {"Code": "AccessDeniedException", "Message": "not authorized"}
    return _Answer(400), {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}
