"""``python -m sandbox.local`` (``make local``): a local world for ``sam local invoke`` and the CLI.

In the foreground, in one process: moto's server and the SES-like SMTP server (both on 127.0.0.1,
on ports the OS picks, never 8080, where ``sam local``'s runtime emulator listens with
``--docker-network host``). It creates the IAM user and the secret as ``template.yaml`` does (the
bootstrap value ``{"iam_user_name": ...}``; region, host and port come from the function's
environment), turns rotation on and starts one: ``AWSPENDING`` on a new, empty version, as
``RotateSecret`` does. Then it writes, into ``--dir`` (``.local/``):

* ``createSecret.json`` … ``finishSecret.json``: the four events of that rotation (``SecretId``,
  ``ClientRequestToken``, ``RotationToken``);
* ``env.json`` for ``sam local invoke --env-vars`` (Linux, ``--docker-network host``: the container
  reaches this machine as 127.0.0.1) and ``env.docker-desktop.json`` (the container reaches it as
  ``host.docker.internal``);
* ``template.json``: ``template.yaml`` with two more function variables, ``AWS_ENDPOINT_URL`` and
  ``SSL_CERT_FILE`` (``sam local invoke`` passes a variable of ``--env-vars`` only when the template
  declares it), the built code (``make build``) and a layer holding the world's CA certificate,
  which the container sees as ``/opt/ca.pem``;
* ``ca/ca.pem``: the same certificate for the CLI and the examples on this machine.

It prints the commands to run next and serves until Ctrl-C or SIGTERM; then it stops both servers,
removes what it wrote and exits 0. Once the printed rotation has finished, a ``RotateSecret`` (the
CLI's ``rotate --wait``) is run as the service runs it (:mod:`sandbox.rotation_service`): the
function runs in this process, with ``env.json``'s variables as this machine sees them, and its log
lines go to moto's ``/aws/lambda/ses-smtp-rotation`` group.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import shlex
import shutil
import signal
import sys
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import yaml

from sandbox.events import STEPS
from sandbox.ses_smtp import SesSmtpServer

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType

ROOT: Final = Path(__file__).resolve().parents[1]
TEMPLATE: Final = ROOT / "template.yaml"
BUILT_CODE: Final = ROOT / ".aws-sam" / "build" / "RotationFunction"
FUNCTION: Final = "RotationFunction"
CA_LAYER: Final = "LocalWorldCa"
CONTAINER_CA_FILE: Final = "/opt/ca.pem"
DOCKER_DESKTOP_HOST: Final = "host.docker.internal"
SAM_EMULATOR_PORT: Final = 8080
BIND: Final = "127.0.0.1"
FAKE_CREDENTIALS: Final = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
EXTRA_VARIABLES: Final = ("AWS_ENDPOINT_URL", "SSL_CERT_FILE")
"""Variables the local template adds to the function's: where AWS is, which CA to trust."""


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader reading CloudFormation short forms: ``!Sub x`` becomes ``{"Fn::Sub": x}``."""


def _construct_tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """Read a CloudFormation YAML template into plain JSON-able data (long-form intrinsics)."""
    loaded: dict[str, Any] = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass
    return loaded


def function_variables(template: dict[str, Any]) -> dict[str, Any]:
    """Return the variables the template gives the rotation function: Globals', then its own."""
    globals_ = template.get("Globals", {}).get("Function", {}).get("Environment", {})
    own = template["Resources"][FUNCTION]["Properties"].get("Environment", {})
    return {**globals_.get("Variables", {}), **own.get("Variables", {})}


def _default(template: dict[str, Any], name: str, value: Any) -> str:  # noqa: ANN401 - template data
    """Return a variable's value with every parameter at its default; literals as they are."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        value = template["Parameters"][value["Ref"]].get("Default", "")
    if isinstance(value, dict | list):
        msg = f"{name}: the local world must set this variable itself ({value!r})"
        raise TypeError(msg)
    return str(value).lower() if isinstance(value, bool) else str(value)


def function_env(
    template: dict[str, Any], world: dict[str, str], *, host: str = BIND
) -> dict[str, str]:
    """Return the function's variables for ``--env-vars``: the world's values, else defaults.

    ``world`` holds the values the stack would compute (``SECRET_ARN``, ``SMTP_IAM_USER_NAME``,
    ``SES_REGION``, ``SMTP_HOST``, ``SMTP_PORT``) and :data:`EXTRA_VARIABLES`; ``host`` is this
    machine's name as the container sees it, put in ``SMTP_HOST`` and ``AWS_ENDPOINT_URL``.
    """
    variables = function_variables(template)
    env = {
        name: world[name] if name in world else _default(template, name, value)
        for name, value in variables.items()
    }
    env |= {name: world[name] for name in EXTRA_VARIABLES}
    env["SMTP_HOST"] = host
    env["AWS_ENDPOINT_URL"] = env["AWS_ENDPOINT_URL"].replace(BIND, host)
    return env


def host_architecture(machine: str | None = None) -> str:
    """Return the Lambda architecture of this machine (``arm64`` or ``x86_64``)."""
    machine = (machine or platform.machine()).lower()
    return "arm64" if machine in {"arm64", "aarch64"} else "x86_64"


def local_template(
    template: dict[str, Any], ca_dir: Path, code_dir: Path, *, architecture: str | None = None
) -> dict[str, Any]:
    """Return ``template`` as ``sam local invoke`` needs it for this world (see the module doc).

    The function runs on this machine's architecture (the package is pure Python), so that an
    x86_64 machine needs no emulator for the template's arm64.
    """
    local: dict[str, Any] = json.loads(json.dumps(template))
    function_globals = local.setdefault("Globals", {}).setdefault("Function", {})
    function_globals["Architectures"] = [architecture or host_architecture()]
    local["Resources"][FUNCTION]["Properties"].pop("Architectures", None)
    function = local["Resources"][FUNCTION]["Properties"]
    function["CodeUri"] = str(code_dir)
    function.setdefault("Environment", {}).setdefault("Variables", {})
    function["Environment"]["Variables"] |= dict.fromkeys(EXTRA_VARIABLES, "")
    function["Layers"] = [{"Ref": CA_LAYER}]
    local["Resources"][CA_LAYER] = {
        "Type": "AWS::Serverless::LayerVersion",
        "Properties": {"ContentUri": str(ca_dir), "CompatibleRuntimes": ["python3.13"]},
    }
    return local


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.local",
        description="a local world for `sam local invoke` and the CLI (Ctrl-C stops it)",
    )
    parser.add_argument("--dir", type=Path, default=Path(".local"), help="output folder (.local)")
    parser.add_argument("--region", default="us-east-1", help="SES region played (us-east-1)")
    parser.add_argument("--user-name", default="ses-smtp-user", help="IAM user (ses-smtp-user)")
    return parser.parse_args(argv)


def _shown(path: Path, root: Path | None = None) -> str:
    """Return ``path`` relative to ``root`` (the working directory) when under it, else as is."""
    try:
        return str(path.relative_to(root or Path.cwd()))
    except ValueError:
        return str(path)


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the world until Ctrl-C or SIGTERM (see the module docstring); return 0."""
    args = _parse_args(argv)
    from moto.core.base_backend import BackendDict  # noqa: PLC0415 - as moto's server below
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - only this entry point needs it

    from sandbox import moto_fidelity, rotation_service  # noqa: PLC0415 - imports moto, as above
    from sandbox.secrets_manager import SecretsManagerDriver  # noqa: PLC0415

    moto_fidelity.install()
    rotation_service.install()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per AWS request
    stopped = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stopped.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    out_dir: Path = args.dir.resolve()
    created_dir = not out_dir.exists()
    written: list[Path] = []
    saved_env = dict(os.environ)
    service = None
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
            endpoint = f"http://{host}:{port}"
            arn = _create_user_and_secret(endpoint, region=args.region, user_name=args.user_name)
            world = {
                "SECRET_ARN": arn,
                "SMTP_IAM_USER_NAME": args.user_name,
                "SES_REGION": args.region,
                "SMTP_HOST": smtp.host,
                "SMTP_PORT": str(smtp.port),
                "AWS_ENDPOINT_URL": endpoint,
                "SSL_CERT_FILE": CONTAINER_CA_FILE,
            }
            os.environ.update(in_process_env(world, region=args.region, ca_file=smtp.ca_file))
            driver = SecretsManagerDriver(secret_id=arn, handler=_in_process, region=args.region)
            driver.enable_rotation()
            service = rotation_service.serve(driver)
            token = driver.start()
            out_dir.mkdir(parents=True, exist_ok=True)
            _write_files(out_dir, written, arn=arn, token=token, world=world, ca_file=smtp.ca_file)
            _announce(
                out_dir, arn=arn, endpoint=endpoint, smtp=smtp, token=token, region=args.region
            )
            while not stopped.wait(0.2):
                pass
    finally:
        if service is not None:
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


def _create_user_and_secret(endpoint: str, *, region: str, user_name: str) -> str:
    """Create the IAM user and the secret with its bootstrap value, as the stack does; its ARN."""
    import boto3  # noqa: PLC0415 - imported after the arguments parse, as moto

    from sandbox.world import SES_SEND_POLICY  # noqa: PLC0415 - imports moto

    session = boto3.session.Session(
        region_name=region,
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
    )
    iam = session.client("iam", endpoint_url=endpoint)
    sm = session.client("secretsmanager", endpoint_url=endpoint)
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
    token: str,
    world: dict[str, str],
    ca_file: Path,
) -> None:
    """Write the events, env files, the local template and the CA; add each path to ``written``.

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
    for step in STEPS:
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


def sam_command(
    out_dir: Path, step: str, *, docker_desktop: bool = False, root: Path | None = None
) -> str:
    """Return the ``sam local invoke`` line for one step (run after :func:`shell_setup`).

    Paths are shown relative to ``root`` (the working directory) when they are under it.
    """
    env_file = "env.docker-desktop.json" if docker_desktop else "env.json"
    network = "" if docker_desktop else " --docker-network host"
    return (
        f"sam local invoke {FUNCTION} -t {_shown(out_dir / 'template.json', root)} "
        f"-e {_shown(out_dir / f'{step}.json', root)} "
        f"--env-vars {_shown(out_dir / env_file, root)}{network}"
    )


def shell_setup(out_dir: Path, *, arn: str, endpoint: str, region: str) -> list[str]:
    """Return the shell lines that point sam, the CLI and the examples at this world."""
    credentials = " ".join(f"{name}={value}" for name, value in FAKE_CREDENTIALS.items())
    return [
        ". .venv/bin/activate",
        f"export {credentials} AWS_REGION={region} AWS_DEFAULT_REGION={region}",
        f"export SES_SMTP_SECRET_ID={shlex.quote(arn)}",
        f"export AWS_ENDPOINT_URL={shlex.quote(endpoint)}",
        f"export SSL_CERT_FILE={shlex.quote(str(out_dir / 'ca' / 'ca.pem'))}",
    ]


CLI_COMMANDS: Final = (
    'ses-smtp-rotator check --secret-id "$SES_SMTP_SECRET_ID"',
    'ses-smtp-rotator export --secret-id "$SES_SMTP_SECRET_ID" --format env',
    "python examples/smtplib_example.py app@example.com user@example.com",
    'ses-smtp-rotator rotate --secret-id "$SES_SMTP_SECRET_ID" --wait',
)
"""What to try once the rotation finished: the CLI and an example against the same world, then a
rotation that the world runs itself (RotateSecret hands it to the function, in its process)."""

HEADINGS: Final = {
    "setup": "In another shell, from the repository:",
    "linux": "Run the steps in order (Linux, Docker's host network):",
    "docker-desktop": (
        f"On Docker Desktop the container reaches this machine as {DOCKER_DESKTOP_HOST}:"
    ),
    "cli": (
        "Once finishSecret has run, the CLI and an example against the same world, then a "
        "rotation the world runs itself:"
    ),
}
"""The printed headings; the commands of each follow, indented by two spaces."""


def _announce(  # noqa: PLR0913 - keyword-only, what the announcement shows
    out_dir: Path,
    *,
    arn: str,
    endpoint: str,
    smtp: SesSmtpServer,
    token: str,
    region: str,
) -> None:
    sections = {
        "setup": shell_setup(out_dir, arn=arn, endpoint=endpoint, region=region),
        "linux": [sam_command(out_dir, step) for step in STEPS],
        "docker-desktop": [sam_command(out_dir, step, docker_desktop=True) for step in STEPS],
        "cli": list(CLI_COMMANDS),
    }
    lines = [
        f"Local world: AWS (moto) at {endpoint}, SES-like SMTP at {smtp.host}:{smtp.port}",
        f"Secret {arn}: rotation started, AWSPENDING on version {token}",
        f"Files in {_shown(out_dir)}/: one event per step, env.json, template.json, ca/ca.pem",
    ]
    if not BUILT_CODE.is_dir():
        lines.append("The function is not built yet: run `make build` first (no Docker needed).")
    for key, commands in sections.items():
        lines += ["", HEADINGS[key], *(f"  {command}" for command in commands)]
    lines += ["", "Ctrl-C stops the world and removes these files."]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    raise SystemExit(main())
