"""``ses-smtp-rotator export``: the secret's credentials for non-Python consumers."""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
from typing import TYPE_CHECKING

import pytest

from ses_smtp_rotator import client as smtp_client
from ses_smtp_rotator.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, build_parser, main

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path
    from typing import Any

    from sandbox.world import World


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    smtp_client.clear_cache()
    yield
    smtp_client.clear_cache()


def parse_env(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in shlex.split(text))


def parse_postfix(text: str) -> dict[str, str]:
    match = re.fullmatch(r"\[(?P<host>[^]]+)\]:(?P<port>\d+) (?P<user>[^:\s]+):(?P<pw>\S+)\n", text)
    assert match is not None
    return match.groupdict()


def expected(world: World, fmt: str) -> dict[str, Any]:
    value = world.value()
    host, port, user, password = "localhost", world.ses.port, value["username"], value["password"]
    if fmt == "env":
        return {
            "SMTP_HOST": host,
            "SMTP_PORT": str(port),
            "SMTP_USERNAME": user,
            "SMTP_PASSWORD": password,
            "SMTP_TLS_MODE": "starttls",
        }
    if fmt == "json":
        return {
            "host": host,
            "port": port,
            "username": user,
            "password": password,
            "region": world.region,
            "tls_mode": "starttls",
        }
    return {"host": host, "port": str(port), "user": user, "pw": password}


PARSERS: dict[str, Callable[[str], dict[str, Any]]] = {
    "env": parse_env,
    "json": json.loads,
    "postfix": parse_postfix,
}


@pytest.mark.parametrize(
    "fmt",
    [
        pytest.param("env", id="env"),
        pytest.param("json", id="json"),
        pytest.param("postfix", id="postfix-sasl_passwd"),
    ],
)
def test_export_to_a_private_file(world: World, tmp_path: Path, fmt: str) -> None:
    # GIVEN a rotated secret, a permissive umask and no file yet
    assert world.rotate().ok
    target = tmp_path / "smtp-credentials"
    argv = ["export", "--secret-id", world.secret_arn, "--format", fmt, "--output", str(target)]
    old_umask = os.umask(0)
    try:
        # WHEN the credentials are exported to the file
        code = main(argv)
    finally:
        os.umask(old_umask)
    # THEN the file holds the current credentials, owner-only, and nothing else was left behind
    assert code == EXIT_OK
    assert PARSERS[fmt](target.read_text()) == expected(world, fmt)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert (target.stat().st_uid, target.stat().st_gid) == (os.geteuid(), os.getegid())
    assert [p.name for p in tmp_path.iterdir()] == ["smtp-credentials"]
    # AND nothing secret was on its command line
    assert not [m for m in world.secret_material() if any(m in arg for arg in argv)]


@pytest.mark.parametrize(
    "output", [pytest.param((), id="no-output"), pytest.param(("--output", "-"), id="dash")]
)
def test_export_to_stdout_prints_the_credentials(
    world: World, capfd: pytest.CaptureFixture[str], output: tuple[str, ...]
) -> None:
    # GIVEN a rotated secret
    assert world.rotate().ok
    capfd.readouterr()  # the rotation's own logs
    # WHEN exported without --output, or to `-` (standard output, by convention)
    code = main(["export", "--secret-id", world.secret_arn, *output])
    # THEN stdout holds env lines (read here, so the leak scan sees only what the test did not ask
    # for) and stderr holds nothing secret
    out, err = capfd.readouterr()
    assert code == EXIT_OK
    assert parse_env(out) == expected(world, "env")
    assert err == ""


OTHER_ID = 4242  # an owner and a group nobody on this machine has: only root can give them


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(0o640, 0o640, id="0640-kept"),
        pytest.param(0o600, 0o600, id="0600-kept"),
        pytest.param(0o644, 0o640, id="0644-narrowed"),
        pytest.param(0o666, 0o640, id="0666-narrowed"),
        pytest.param(0o400, 0o400, id="0400-kept"),
    ],
)
def test_export_over_a_file_keeps_its_owner_group_and_mode(
    world: World, tmp_path: Path, before: int, after: int
) -> None:
    # GIVEN postfix's sasl_passwd as root:postfix 0640 (here: an unknown owner and group), which
    # the daemon reads through its group (issue 14: an export made it root:root 0600)
    if os.geteuid() != 0:
        pytest.skip("giving a file another owner and group needs root (CI runs as root)")
    assert world.rotate().ok
    target = tmp_path / "sasl_passwd"
    target.write_text("old\n")
    os.chown(target, OTHER_ID, OTHER_ID + 1)
    target.chmod(before)
    # WHEN the credentials are exported over it
    argv = ["export", "--secret-id", world.secret_arn, "--format", "postfix", "--output"]
    assert main([*argv, str(target)]) == EXIT_OK
    # THEN it holds the new line with the same owner and group, and its mode, at most 0640
    written = target.stat()
    assert parse_postfix(target.read_text())["user"] == world.value()["username"]
    assert (written.st_uid, written.st_gid) == (OTHER_ID, OTHER_ID + 1)
    assert stat.S_IMODE(written.st_mode) == after
    assert [p.name for p in tmp_path.iterdir()] == ["sasl_passwd"]


def test_export_reads_the_current_value_after_a_rotation(world: World, tmp_path: Path) -> None:
    # GIVEN an export made before a rotation
    assert world.rotate().ok
    target = tmp_path / "sasl_passwd"
    argv = [
        "export",
        "--secret-id",
        world.secret_arn,
        "--format",
        "postfix",
        "--output",
        str(target),
    ]
    assert main(argv) == EXIT_OK
    first = parse_postfix(target.read_text())["user"]
    # WHEN the secret rotates and the export runs again in the same process
    assert world.rotate().ok
    assert main(argv) == EXIT_OK
    # THEN it holds the new key (a one-shot command never serves a cached value)
    assert parse_postfix(target.read_text())["user"] == world.value()["username"] != first


def test_export_takes_nothing_secret_on_argv(
    world: World, capfd: pytest.CaptureFixture[str]
) -> None:
    # GIVEN export's options: none of them carries a secret
    assert world.rotate().ok
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["export"]  # type: ignore[index]
    options = {o for action in sub._actions for o in action.option_strings}
    assert options == {"-h", "--help", "--secret-id", "--region", "--format", "--output"}
    capfd.readouterr()
    # WHEN someone appends a password anyway
    password = world.value()["password"]
    code = main(["export", "--secret-id", world.secret_arn, password])
    # THEN it is refused without echoing it (exit 2)
    out, err = capfd.readouterr()
    assert code == EXIT_USAGE
    assert "takes no secret" in err
    assert password not in out + err


@pytest.mark.parametrize(
    ("rotated", "secret_id", "code", "message"),
    [
        pytest.param(False, None, EXIT_FAILED, "first rotation has not completed", id="bootstrap"),
        pytest.param(True, "no-such-secret", EXIT_FAILED, "ResourceNotFound", id="missing"),
    ],
)
def test_export_errors(  # noqa: PLR0913 - a table row plus fixtures
    world: World,
    capfd: pytest.CaptureFixture[str],
    *,
    rotated: bool,
    secret_id: str | None,
    code: int,
    message: str,
) -> None:
    if rotated:
        assert world.rotate().ok
    capfd.readouterr()
    assert main(["export", "--secret-id", secret_id or world.secret_arn]) == code
    out, err = capfd.readouterr()
    assert out == ""
    assert message in err


def test_export_to_an_unwritable_place_is_a_usage_error(
    world: World, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert world.rotate().ok
    capfd.readouterr()
    # a directory where the file should go: nothing written, the temporary file removed
    assert main(["export", "--secret-id", world.secret_arn, "--output", str(tmp_path)]) == 2
    assert "cannot write" in capfd.readouterr().err
    assert list(tmp_path.iterdir()) == []
