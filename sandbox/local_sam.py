"""The ``sam local invoke`` side of the local world (``make local LOCAL_ARGS=--sam``).

The template as ``sam local invoke`` needs it for a world on this machine, the function's
``--env-vars`` and the printed ``sam`` lines. sam is called by its path in ``.venv-sam`` (the
environment ``make setup`` makes for it), so that the printed lines run as pasted.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any, Final

from tools import cfn_yaml

ROOT: Final = Path(__file__).resolve().parents[1]
TEMPLATE: Final = ROOT / "template.yaml"
BUILT_CODE: Final = ROOT / ".aws-sam" / "build" / "RotationFunction"
FUNCTION: Final = "RotationFunction"
CA_LAYER: Final = "LocalWorldCa"
CONTAINER_CA_FILE: Final = "/opt/ca.pem"
DOCKER_DESKTOP_HOST: Final = "host.docker.internal"
BIND: Final = "127.0.0.1"
SAM: Final = ".venv-sam/bin/sam"
"""Where `make setup` puts sam (it is in no other environment)."""
EXTRA_VARIABLES: Final = ("AWS_ENDPOINT_URL", "SSL_CERT_FILE")
"""Variables the local template adds to the function's: where AWS is, which CA to trust."""


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """Read a CloudFormation YAML template into JSON-able data (long-form intrinsics)."""
    loaded: dict[str, Any] = cfn_yaml.parse(path.read_text(encoding="utf-8"))
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


def shown(path: Path, root: Path | None = None) -> str:
    """Return ``path`` relative to ``root`` (the working directory) when under it, else as is."""
    try:
        return str(path.relative_to(root or Path.cwd()))
    except ValueError:
        return str(path)


def sam_command(
    out_dir: Path, step: str, *, docker_desktop: bool = False, root: Path | None = None
) -> str:
    """Return the ``sam local invoke`` line for one step (run after :func:`shell_setup`).

    Paths are shown relative to ``root`` (the working directory) when they are under it.
    """
    env_file = "env.docker-desktop.json" if docker_desktop else "env.json"
    network = "" if docker_desktop else " --docker-network host"
    return (
        f"{SAM} local invoke {FUNCTION} -t {shown(out_dir / 'template.json', root)} "
        f"-e {shown(out_dir / f'{step}.json', root)} "
        f"--env-vars {shown(out_dir / env_file, root)}{network}"
    )
