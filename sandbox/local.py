"""``python -m sandbox.local`` (``make local``): a local world for the CLI, the examples and sam.

In the foreground, in one process: moto's server and the SES-like SMTP server (both on 127.0.0.1,
on ports the OS picks, never 8080, where ``sam local``'s runtime emulator listens with
``--docker-network host``). It creates the IAM user and the secret as ``template.yaml`` does (the
bootstrap value ``{"iam_user_name": ...}``; region, host and port come from the function's
environment) and turns rotation on, with the rotation function running in this process as the
Lambda behind ``RotateSecret`` (:mod:`sandbox.rotation_service`): the CLI's ``rotate --wait``
starts a rotation that the world runs itself, with ``env.json``'s variables as this machine sees
them, its log lines in moto's ``/aws/lambda/ses-smtp-rotation`` group and its metrics there too
(not on this terminal). No Docker is needed. It writes, into ``--dir`` (``.local/``):

* ``ca/ca.pem``: the SMTP server's CA certificate, for the CLI and the examples;
* ``env.json`` and ``env.docker-desktop.json`` (the function's ``--env-vars`` on Linux's host
  network, and on Docker Desktop), ``template.json`` (:func:`sandbox.local_sam.local_template`).

With ``--sam`` (``make local LOCAL_ARGS=--sam``, for those who have Docker) it also starts one
rotation, ``AWSPENDING`` on a new, empty version, as ``RotateSecret`` does, and writes its four
events (``createSecret.json`` … ``finishSecret.json``) for ``sam local invoke``, one step at a
time; later rotations run in this process as above. With ``--fleet N`` it also adds N apps of a
fleet, each rotated once, for ``status --fleet local`` (:mod:`sandbox.local_fleet`).

It prints the commands to run next, runnable as pasted from the repository's root, and serves until
Ctrl-C or SIGTERM; then it stops both servers, removes what it wrote (and the file the printed
``sync`` writes) and exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sandbox.events import STEPS
from sandbox.local_commands import (
    FAKE_CREDENTIALS,
    HEADINGS,
    SYNC_FILE,
    announce,
    cli_commands,
    shell_setup,
)
from sandbox.local_fleet import MAX_APPS, add_fleet, apps_count, clients, fleet_commands
from sandbox.local_sam import (
    BIND,
    BUILT_CODE,
    CA_LAYER,
    CONTAINER_CA_FILE,
    DOCKER_DESKTOP_HOST,
    EXTRA_VARIABLES,
    FUNCTION,
    SAM,
    function_env,
    host_architecture,
    load_template,
    local_template,
    sam_command,
)
from sandbox.ses_smtp import SesSmtpServer

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType

__all__ = [
    "BIND",
    "CA_LAYER",
    "DOCKER_DESKTOP_HOST",
    "EXTRA_VARIABLES",
    "FAKE_CREDENTIALS",
    "FUNCTION",
    "HEADINGS",
    "SAM",
    "SAM_EMULATOR_PORT",
    "SYNC_FILE",
    "cli_commands",
    "host_architecture",
    "main",
    "sam_command",
    "shell_setup",
]

SAM_EMULATOR_PORT: Final = 8080


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.local",
        description="a local world for the CLI, the examples and `sam local invoke` (Ctrl-C "
        "stops it)",
    )
    parser.add_argument("--dir", type=Path, default=Path(".local"), help="output folder (.local)")
    parser.add_argument("--region", default="us-east-1", help="SES region played (us-east-1)")
    parser.add_argument("--user-name", default="ses-smtp-user", help="IAM user (ses-smtp-user)")
    fleet = f"also a fleet of N apps (at most {MAX_APPS}), each rotated once, for status --fleet"
    parser.add_argument("--fleet", type=apps_count, default=0, metavar="N", help=fleet)
    parser.add_argument(
        "--sam",
        action="store_true",
        help="also start a rotation and write its events, for `sam local invoke` (needs Docker)",
    )
    return parser.parse_args(argv)


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the world until Ctrl-C or SIGTERM (see the module docstring); return 0."""
    args = _parse_args(argv)
    from moto.core.base_backend import BackendDict  # noqa: PLC0415 - as moto's server below
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - only this entry point needs it

    from sandbox import moto_fidelity, rotation_service  # noqa: PLC0415 - imports moto, as above

    moto_fidelity.install()
    rotation_service.install()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per AWS request
    stopped = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stopped.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    out_dir: Path = args.dir.resolve()
    created_dir = not out_dir.exists()
    written: list[Path] = [out_dir / SYNC_FILE]
    saved_env = dict(os.environ)
    services: list[Any] = []
    # moto keeps its state in this process's backends: start from an empty AWS and leave one.
    BackendDict.reset()
    moto_server = ThreadedMotoServer(ip_address=BIND, port=0, verbose=False)
    try:
        moto_server.start()
        with SesSmtpServer(region=args.region) as smtp:
            host, port = moto_server.get_host_and_port()
            if SAM_EMULATOR_PORT in {port, smtp.port}:
                sys.stderr.write("a server got port 8080, which sam local needs: run it again\n")
                return 1
            _serve(args, out_dir, written, services, endpoint=f"http://{host}:{port}", smtp=smtp)
            while not stopped.wait(0.2):
                pass
    finally:
        for service in services:
            rotation_service.withdraw(service)  # a rotation still running ends first (bounded)
        moto_server.stop()
        BackendDict.reset()
        _remove(written, out_dir if created_dir else None)
        os.environ.clear()
        os.environ.update(saved_env)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    sys.stdout.write("local world stopped\n")
    return 0


def _serve(  # noqa: PLR0913 - keyword-only, the world's parts
    args: argparse.Namespace,
    out_dir: Path,
    written: list[Path],
    services: list[Any],
    *,
    endpoint: str,
    smtp: SesSmtpServer,
) -> None:
    """Create the user and the secret, serve its rotations here, write the files, announce."""
    from sandbox import rotation_service  # noqa: PLC0415 - imports moto
    from sandbox.secrets_manager import SecretsManagerDriver  # noqa: PLC0415 - imports moto

    arn = _create_user_and_secret(endpoint, region=args.region, user_name=args.user_name)
    world = {
        "SECRET_ARN": arn,
        "SMTP_IAM_USER_NAME": args.user_name,
        "SES_REGION": args.region,
        "SMTP_HOST": smtp.host,
        "SMTP_PORT": str(smtp.port),
        "AWS_ENDPOINT_URL": endpoint,
        "SSL_CERT_FILE": CONTAINER_CA_FILE,
        # The template's namespace is per stack (a !Sub): the local world names its own.
        "POWERTOOLS_METRICS_NAMESPACE": "SesSmtpRotationLocal",
    }
    os.environ.update(in_process_env(world, region=args.region, ca_file=smtp.ca_file))
    driver = SecretsManagerDriver(secret_id=arn, handler=_in_process, region=args.region)
    driver.enable_rotation()
    services.append(rotation_service.serve(driver))
    if args.fleet:
        services += add_fleet(
            args.fleet,
            world=clients(endpoint, args.region),
            region=args.region,
            handler=_in_process,
        )
    token = driver.start() if args.sam else None
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_files(out_dir, written, arn=arn, token=token, world=world, ca_file=smtp.ca_file)
    fleet = fleet_commands() if args.fleet else None
    announce(
        out_dir, arn=arn, endpoint=endpoint, smtp=smtp, token=token, region=args.region, fleet=fleet
    )


def _create_user_and_secret(endpoint: str, *, region: str, user_name: str) -> str:
    """Create the IAM user and the secret with its bootstrap value, as the stack does; its ARN."""
    from sandbox.world import SES_SEND_POLICY  # noqa: PLC0415 - imports moto

    iam, sm = (clients(endpoint, region)[name] for name in ("iam", "secretsmanager"))
    iam.create_user(UserName=user_name)
    iam.put_user_policy(
        UserName=user_name, PolicyName="ses-send", PolicyDocument=json.dumps(SES_SEND_POLICY)
    )
    bootstrap = json.dumps({"iam_user_name": user_name})
    arn: str = sm.create_secret(Name="ses-smtp-rotator", SecretString=bootstrap)["ARN"]
    return arn


def in_process_env(world: dict[str, str], *, region: str, ca_file: Path) -> dict[str, str]:
    """Return the variables the function runs with in this process (a later ``rotate-secret``).

    They are ``env.json``'s as this machine sees them: the CA file at its path here, not the
    container's.
    """
    return (
        function_env(load_template(), world)
        | FAKE_CREDENTIALS
        | {"AWS_REGION": region, "SSL_CERT_FILE": str(ca_file)}
    )


def _in_process(event: dict[str, Any], context: Any) -> object:  # noqa: ANN401 - Lambda contract
    """Run the rotation function in this process (RotateSecret's later rotations)."""
    # Imported late, once the function's variables are in place.
    from rotation_handler.app import lambda_handler  # noqa: PLC0415

    return lambda_handler(event, context)


def _write_files(  # noqa: PLR0913 - keyword-only, what the files hold
    out_dir: Path,
    written: list[Path],
    *,
    arn: str,
    token: str | None,
    world: dict[str, str],
    ca_file: Path,
) -> None:
    """Write the CA, the env files, the local template and (``token``) the events.

    ``written`` lists what to remove on exit: a file as soon as it is written (a folder only if
    this call made it), so that a failure half-way leaves nothing behind either.
    """
    ca_dir = out_dir / "ca"
    if not ca_dir.exists():
        ca_dir.mkdir()
        written.append(ca_dir)
    written.append(ca_dir / "ca.pem")
    shutil.copyfile(ca_file, ca_dir / "ca.pem")
    rotation_token = str(uuid.uuid4())
    for step in STEPS if token else ():
        event = {
            "SecretId": arn,
            "ClientRequestToken": token,
            "Step": step,
            "RotationToken": rotation_token,
        }
        written.append(out_dir / f"{step}.json")
        _write_json(out_dir / f"{step}.json", event)
    template = load_template()
    for name, host in (("env.json", BIND), ("env.docker-desktop.json", DOCKER_DESKTOP_HOST)):
        written.append(out_dir / name)
        _write_json(out_dir / name, {FUNCTION: function_env(template, world, host=host)})
    written.append(out_dir / "template.json")
    _write_json(out_dir / "template.json", local_template(template, ca_dir, BUILT_CODE))


def _remove(written: list[Path], directory: Path | None) -> None:
    """Remove what the world wrote (files first), then ``directory``; a folder only if empty."""
    folders = [path for path in written if path.is_dir()]
    for path in written:
        if path not in folders:
            path.unlink(missing_ok=True)
    for folder in [*folders, *([directory] if directory is not None else [])]:
        with contextlib.suppress(OSError):  # not empty: someone else's files are in it
            folder.rmdir()


if __name__ == "__main__":
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    raise SystemExit(main())
