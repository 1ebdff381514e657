"""``make local`` (``python -m sandbox.local``): its world, the files it writes, what it prints.

Without Docker (the default) every printed command runs, in order, in one shell, as pasted: a
rotation the world runs itself, ``status``, ``check``, ``sync --once`` and the smtplib example.
With ``--sam``, Docker is not on this machine, so the ``sam local invoke`` lines themselves do not
run: the same event files run in-process against the same servers, with the variables of the
written ``env.json`` applied, and every other printed command runs as a shell would run it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import boto3
import pytest

from sandbox import local
from sandbox.events import STEPS
from sandbox.secrets_manager import LocalLambdaContext
from sandbox.tls import TestCa
from tests import leakscan
from tests.unit.test_template_policy import load_template

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT: Final = Path(__file__).resolve().parents[2]
STARTUP_SECONDS: Final = 30.0
STOP_SECONDS: Final = 15.0
SAM_LINE: Final = re.compile(
    r"^\.venv-sam/bin/sam local invoke RotationFunction -t (?P<template>\S+) -e (?P<event>\S+) "
    r"--env-vars (?P<env>\S+)(?P<network> --docker-network host)?$"
)


class LocalWorld:
    """A running ``python -m sandbox.local`` and what it printed, section by section."""

    def __init__(self, process: subprocess.Popen[str], out_dir: Path) -> None:
        self.process = process
        self.out_dir = out_dir
        self.lines: list[str] = []
        self.sections: dict[str, list[str]] = {}

    def read_until_ready(self) -> None:
        """Read the announcement up to its last line (bounded by the process's own output)."""
        assert self.process.stdout is not None
        headings = {text: key for key, text in local.HEADINGS.items()}
        current: str | None = None
        for raw in self.process.stdout:
            line = raw.rstrip("\n")
            self.lines.append(line)
            if line in headings:
                current = headings[line]
                self.sections[current] = []
            elif line.startswith("  ") and current is not None:
                self.sections[current].append(line[2:])
            elif line.startswith("Ctrl-C stops"):
                return
        pytest.fail(f"the world exited before it was ready: {self.lines}")

    def ports(self) -> list[tuple[str, int]]:
        """The moto and SMTP addresses the first line announces."""
        found = re.findall(r"(?:http://)?([\w.]+):(\d+)", self.lines[0])
        return [(host, int(port)) for host, port in found]


@pytest.fixture
def local_world_process(tmp_path: Path) -> Iterator[LocalWorld]:
    """``make local LOCAL_ARGS=--sam``: the world with a rotation started for sam."""
    yield from _start(tmp_path, "--sam")


@pytest.fixture
def no_docker_world(tmp_path: Path) -> Iterator[LocalWorld]:
    """``make local``: the world for the CLI, with no Docker."""
    yield from _start(tmp_path)


def _start(tmp_path: Path, *options: str) -> Iterator[LocalWorld]:
    out_dir = tmp_path / "local"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "sandbox.local", "--dir", str(out_dir), *options],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    world = LocalWorld(process, out_dir)
    # A bound on the start-up: the process is killed if it has not announced itself by then.
    timer = _kill_after(process, STARTUP_SECONDS)
    try:
        world.read_until_ready()
    finally:
        timer.cancel()
    try:
        yield world
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=STOP_SECONDS)


def _kill_after(process: subprocess.Popen[str], seconds: float) -> threading.Timer:
    def kill() -> None:
        if process.poll() is None:
            process.kill()

    timer = threading.Timer(seconds, kill)
    timer.start()
    return timer


def _is_listening(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


def _setup_env(lines: list[str]) -> dict[str, str]:
    """The variables the printed ``export`` lines set."""
    env: dict[str, str] = {}
    for line in lines:
        if line.startswith("export "):
            for word in shlex.split(line.removeprefix("export ")):
                name, _, value = word.partition("=")
                env[name] = value
    return env


def _sam_env_files(world: LocalWorld) -> dict[str, dict[str, str]]:
    """Check the printed sam lines (one per step and network); return each network's env file."""
    env_files = {}
    for key, docker_desktop in (("linux", False), ("docker-desktop", True)):
        assert len(world.sections[key]) == len(STEPS)
        for step, line in zip(STEPS, world.sections[key], strict=True):
            match = SAM_LINE.match(line)
            assert match is not None, line
            assert bool(match["network"]) is not docker_desktop
            assert Path(match["event"]).name == f"{step}.json"
            for name in ("template", "event", "env"):
                assert (ROOT / match[name]).is_file(), line
            env_files[key] = json.loads((ROOT / match["env"]).read_text())["RotationFunction"]
    return env_files


def _client(setup: dict[str, str]) -> Any:  # noqa: ANN401 - a boto3 client
    return boto3.client(
        "secretsmanager",
        endpoint_url=setup["AWS_ENDPOINT_URL"],
        region_name=setup["AWS_REGION"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _stages(sm: Any, arn: str) -> dict[str, list[str]]:  # noqa: ANN401 - a boto3 client
    versions = sm.list_secret_version_ids(SecretId=arn)["Versions"]
    return {v["VersionId"]: v["VersionStages"] for v in versions}


def _version_of(sm: Any, arn: str, stage: str) -> str:  # noqa: ANN401 - a boto3 client
    return next(v for v, stages in _stages(sm, arn).items() if stage in stages)


def test_local_world_writes_env_files_events_and_a_started_rotation(
    local_world_process: LocalWorld,
) -> None:
    world = local_world_process
    # GIVEN the world's announcement: both servers listening, off sam's port 8080
    addresses = world.ports()
    assert len(addresses) == 2
    assert all(_is_listening(host, port) for host, port in addresses)
    assert local.SAM_EMULATOR_PORT not in {port for _, port in addresses}
    assert set(world.sections) == {"setup", "linux", "docker-desktop", "after-sam"}
    setup = _setup_env(world.sections["setup"])
    # THEN it printed one sam line per step and per network, each naming files it wrote
    env_files = _sam_env_files(world)
    linux, desktop = env_files["linux"], env_files["docker-desktop"]
    # AND env.json holds exactly the variables the local template gives the function: the
    # template.yaml's (Globals and the function's own), plus where AWS is and which CA to trust
    template = load_template((ROOT / "template.yaml").read_text(encoding="utf-8"))
    function = template["Resources"]["RotationFunction"]["Properties"]
    declared = set(template["Globals"]["Function"]["Environment"]["Variables"])
    declared |= set(function["Environment"]["Variables"])
    expected = declared | {"AWS_ENDPOINT_URL", "SSL_CERT_FILE"}
    assert set(linux) == set(desktop) == expected
    written = json.loads((world.out_dir / "template.json").read_text())
    local_function = written["Resources"]["RotationFunction"]["Properties"]
    assert set(local_function["Environment"]["Variables"]) | declared == expected
    assert local_function["Layers"] == [{"Ref": local.CA_LAYER}]
    assert written["Globals"]["Function"]["Architectures"] == [local.host_architecture()]
    layer = written["Resources"][local.CA_LAYER]["Properties"]["ContentUri"]
    assert (Path(layer) / Path(linux["SSL_CERT_FILE"]).name).is_file()
    # AND the two env files differ only in how the container reaches this machine
    assert (linux["AWS_ENDPOINT_URL"], desktop["AWS_ENDPOINT_URL"]) == (
        setup["AWS_ENDPOINT_URL"],
        setup["AWS_ENDPOINT_URL"].replace("127.0.0.1", "host.docker.internal"),
    )
    assert (linux["SMTP_HOST"], desktop["SMTP_HOST"]) == ("127.0.0.1", "host.docker.internal")
    assert linux["SSL_CERT_FILE"] == "/opt/ca.pem"
    assert {k for k in linux if linux[k] != desktop[k]} == {"AWS_ENDPOINT_URL", "SMTP_HOST"}
    # AND the secret is the template's bootstrap value, with a rotation started on the events'
    # token; its SecretId is the one the CLI lines export
    sm = _client(setup)
    arn = setup["SES_SMTP_SECRET_ID"]
    assert linux["SECRET_ARN"] == arn
    events = [json.loads((world.out_dir / f"{step}.json").read_text()) for step in STEPS]
    assert [e["Step"] for e in events] == list(STEPS)
    tokens = {(e["SecretId"], e["ClientRequestToken"], e["RotationToken"]) for e in events}
    ((secret_id, token, _),) = tokens
    assert secret_id == arn
    assert _stages(sm, arn)[token] == ["AWSPENDING"]
    bootstrap = json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])
    assert bootstrap == {"iam_user_name": linux["SMTP_IAM_USER_NAME"]}
    assert sm.describe_secret(SecretId=arn)["RotationEnabled"] is True


def test_local_world_runs_the_steps_and_its_printed_commands_then_stops_cleanly(
    local_world_process: LocalWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = local_world_process
    addresses = world.ports()
    setup = _setup_env(world.sections["setup"])
    linux = _sam_env_files(world)["linux"]
    arn = setup["SES_SMTP_SECRET_ID"]
    events = [json.loads((world.out_dir / f"{step}.json").read_text()) for step in STEPS]
    # WHEN the four event files run in-process with env.json's variables, as the container would
    # (the CA as this machine sees it: the container sees the same file as /opt/ca.pem)
    from rotation_handler.app import lambda_handler  # noqa: PLC0415 - after the environment is set

    for name, value in {**linux, **local.FAKE_CREDENTIALS}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_REGION", setup["AWS_REGION"])
    monkeypatch.setenv("SSL_CERT_FILE", setup["SSL_CERT_FILE"])
    for event in events:
        lambda_handler(event, LocalLambdaContext())  # type: ignore[arg-type]
    # THEN the rotation completed: the pending version is AWSCURRENT and holds credentials
    sm = _client(setup)
    current = json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])
    assert "AWSCURRENT" in _stages(sm, arn)[events[0]["ClientRequestToken"]]
    assert current["username"].startswith("AKIA")
    leakscan.remember(current["password"], events[0]["RotationToken"])

    # WHEN the printed setup and CLI lines run, in one shell, from the repository
    script = "\n".join(["set -eu", *world.sections["setup"], *world.sections["after-sam"]])
    done = subprocess.run(  # noqa: S603 - bash runs the lines the world printed
        ["bash", "-c", script],  # noqa: S607
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # THEN status is healthy, check logs in, sync writes the current credentials, the example
    # sends a mail, and rotate --wait follows a rotation the world runs itself to its end
    assert done.returncode == 0, done.stdout + done.stderr
    assert "healthy: no problem found" in done.stdout, done.stderr
    assert "OK: logged in" in done.stdout, done.stderr
    synced = (world.out_dir / local.SYNC_FILE).read_text()
    assert f"SMTP_USERNAME={current['username']}" in synced.replace("'", "")
    _, rotated = done.stdout.split("sent to user@example.com\n")
    assert "✓ testSecret" in rotated
    assert "rotation finished in" in rotated.splitlines()[-1]
    newest = json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])
    assert newest["username"] not in {current["username"], ""}
    assert f"AWSCURRENT is now version {_version_of(sm, arn, 'AWSCURRENT')}" in rotated
    leakscan.remember(newest["password"])
    assert leakscan.find_leaks([done.stdout, done.stderr], {current["password"]}) == []
    assert leakscan.find_leaks([done.stdout, done.stderr], {newest["password"]}) == []

    # WHEN the world gets Ctrl-C
    world.process.send_signal(signal.SIGINT)
    out, err = world.process.communicate(timeout=STOP_SECONDS)
    # THEN it exits 0, both ports are closed, and the files it wrote are gone
    assert world.process.returncode == 0, err
    assert "local world stopped" in out
    assert not any(_is_listening(host, port) for host, port in addresses)
    assert not world.out_dir.exists()
    secrets = {current["password"], newest["password"]}
    assert leakscan.find_leaks(["\n".join(world.lines), out, err], secrets) == []


def _run_script(lines: list[str]) -> subprocess.CompletedProcess[str]:
    """Run printed lines in one bash, from the repository, with no AWS variable of ours."""
    return subprocess.run(  # noqa: S603 - bash runs the lines the world printed
        ["bash", "-c", "\n".join(["set -eu", *lines])],  # noqa: S607
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_make_local_without_docker_runs_its_printed_sequence_to_a_healthy_secret(
    no_docker_world: LocalWorld,
) -> None:
    world = no_docker_world
    addresses = world.ports()
    # GIVEN the world's announcement: no rotation started, no sam line, a pointer to --sam
    assert set(world.sections) == {"setup", "cli"}
    assert not any("sam local invoke" in line for line in world.lines)
    assert "With Docker, to run the steps one by one: make local LOCAL_ARGS=--sam" in world.lines
    commands = world.sections["cli"]
    assert [c.split()[1] for c in commands if c.startswith("ses-smtp-rotator")] == [
        "rotate",
        "status",
        "check",
        "sync",
    ]
    setup = _setup_env(world.sections["setup"])
    sm = _client(setup)
    arn = setup["SES_SMTP_SECRET_ID"]
    assert json.loads(sm.get_secret_value(SecretId=arn)["SecretString"]) == {
        "iam_user_name": "ses-smtp-user"
    }
    # WHEN the printed lines run as pasted, in order, in one shell, from the repository
    done = _run_script([*world.sections["setup"], *commands])
    # THEN the rotation the world ran itself completed, status is healthy, check logs in, sync
    # wrote the new credentials, and the example sent a mail with them
    assert done.returncode == 0, done.stdout + done.stderr
    current = json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])
    leakscan.remember(current["password"])
    version = _version_of(sm, arn, "AWSCURRENT")
    assert f"✓ AWSCURRENT is now version {version}" in done.stdout
    assert "✓ testSecret" in done.stdout
    assert "rotation finished in" in done.stdout
    assert "healthy: no problem found" in done.stdout
    assert "OK: logged in" in done.stdout
    synced = (world.out_dir / local.SYNC_FILE).read_text()
    assert f"SMTP_USERNAME={current['username']}" in synced.replace("'", "")
    assert stat.S_IMODE((world.out_dir / local.SYNC_FILE).stat().st_mode) == 0o600
    assert done.stdout.endswith("sent to user@example.com\n")
    assert leakscan.find_leaks([done.stdout, done.stderr], {current["password"]}) == []

    # WHEN a rotation is asked of a secret without a rotation function
    sm.create_secret(Name="plain", SecretString="{}")
    refused = _run_script([*world.sections["setup"], "ses-smtp-rotator rotate --secret-id plain"])
    # THEN it is refused, as Secrets Manager refuses it, and the secret is unchanged
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "the secret has no rotation function" in refused.stderr
    assert list(_stages(sm, "plain").values()) == [["AWSCURRENT"]]

    # WHEN the world gets Ctrl-C
    world.process.send_signal(signal.SIGINT)
    out, err = world.process.communicate(timeout=STOP_SECONDS)
    # THEN its terminal shows no line of the function (no log, no metrics JSON), it exits 0,
    # both ports are closed, and what it wrote, the synced file too, is gone
    assert world.process.returncode == 0, err
    assert not [line for line in [*world.lines, *out.splitlines()] if line.startswith("{")]
    assert "CloudWatchMetrics" not in out + err
    assert not any(_is_listening(host, port) for host, port in addresses)
    assert not world.out_dir.exists()
    assert leakscan.find_leaks([out, err], {current["password"]}) == []


def test_the_smtp_certificate_names_docker_desktops_host() -> None:
    # GIVEN the local CA's server certificate / THEN a container on Docker Desktop, which reaches
    # the world as host.docker.internal, can verify it as well as a client on 127.0.0.1
    from cryptography import x509  # noqa: PLC0415 - trustme's own dependency, only here

    ca = TestCa()
    try:
        pem = ca._cert.cert_chain_pems[0].bytes()  # the certificate the server shows
        names = x509.load_pem_x509_certificate(pem).extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        )
        dns = set(names.value.get_values_for_type(x509.DNSName))
        assert {"localhost", local.DOCKER_DESKTOP_HOST} <= dns
    finally:
        ca.remove()


@pytest.mark.parametrize(
    ("options", "events"),
    [
        pytest.param([], [], id="no-docker"),
        pytest.param(["--sam"], [f"{step}.json" for step in STEPS], id="sam"),
    ],
)
def test_local_world_in_process_writes_its_files_and_removes_them_on_sigint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], events: list[str]
) -> None:
    # GIVEN an output folder that exists already, with files of the user's in it and in ca/
    out_dir = tmp_path / "local"
    out_dir.mkdir()
    (out_dir / "notes.txt").write_text("mine")
    (out_dir / "ca").mkdir()
    (out_dir / "ca" / "mine.pem").write_text("mine")
    seen: list[str] = []

    def stop_when_written() -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline and not (out_dir / "template.json").exists():
            time.sleep(0.05)
        seen.extend(sorted(path.name for path in out_dir.iterdir()))
        os.kill(os.getpid(), signal.SIGINT)  # the world's handler takes it, as Ctrl-C

    # WHEN the world runs in this process until its files are written, then gets SIGINT
    stopper = threading.Thread(target=stop_when_written)
    stopper.start()
    try:
        code = local.main(["--dir", str(out_dir), "--region", "eu-west-1", *options])
    finally:
        stopper.join(timeout=STARTUP_SECONDS)
    # THEN it wrote its files, returned 0, and removed only what it wrote
    assert code == 0
    assert seen == sorted(
        [
            "ca",
            "env.docker-desktop.json",
            "env.json",
            "notes.txt",
            "template.json",
            *events,
        ]
    )
    assert sorted(path.name for path in out_dir.iterdir()) == ["ca", "notes.txt"]
    assert [path.name for path in (out_dir / "ca").iterdir()] == ["mine.pem"]
    out = capsys.readouterr().out
    assert "secret:ses-smtp-rotator" in out
    assert "export AWS_ACCESS_KEY_ID=testing" in out
    assert "AWS_REGION=eu-west-1" in out
    assert out.rstrip().endswith("local world stopped")
    # AND the signal handlers it replaced are back
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize(
    ("machine", "architecture"),
    [("x86_64", "x86_64"), ("AMD64", "x86_64"), ("aarch64", "arm64"), ("arm64", "arm64")],
)
def test_the_local_function_runs_on_the_machines_architecture(
    machine: str, architecture: str
) -> None:
    assert local.host_architecture(machine) == architecture


def test_make_local_with_a_fleet_prints_status_fleet_and_it_finds_every_app_healthy(
    tmp_path: Path,
) -> None:
    # GIVEN `make local LOCAL_ARGS="--fleet 3"`
    with contextlib.contextmanager(_start)(tmp_path, "--fleet", "3") as world:
        # THEN it prints the fleet's commands, and no line of the function's start-up rotations
        assert world.sections["fleet"] == [
            "ses-smtp-rotator status --fleet local",
            "ses-smtp-rotator status --fleet local --json",
        ]
        assert not [line for line in world.lines if line.startswith("{")]
        # WHEN the printed lines run as pasted / THEN every app of the fleet is healthy (exit 0)
        done = _run_script([*world.sections["setup"], *world.sections["fleet"]])
        assert done.returncode == 0, done.stdout + done.stderr
        header = "fleet local (ses-smtp-rotation:fleet=local) in us-east-1: 3 apps, 0 unhealthy"
        assert header in done.stdout
        found = json.loads(done.stdout[done.stdout.index("{") :])
        assert [app["app"] for app in found["apps"]] == ["app-01", "app-02", "app-03"]
        # AND a rotation of the world's own secret still runs (out of fleet mode)
        rotate = 'ses-smtp-rotator rotate --secret-id "$SES_SMTP_SECRET_ID" --wait'
        rotated = _run_script([*world.sections["setup"], rotate])
        assert rotated.returncode == 0, rotated.stdout + rotated.stderr
        # WHEN the world gets Ctrl-C / THEN it stops cleanly
        world.process.send_signal(signal.SIGINT)
        world.process.communicate(timeout=STOP_SECONDS)
        assert world.process.returncode == 0


@pytest.mark.parametrize("count", ["0", "51", "x"])
def test_make_local_refuses_a_fleet_size_out_of_range(count: str) -> None:
    assert local._parse_args([]).fleet == 0
    with pytest.raises(SystemExit):
        local._parse_args(["--fleet", count])
