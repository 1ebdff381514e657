"""Powertools from AWS's layer: the templates' ``PowertoolsLayerArn`` and the bundled build.

The default layer is named by AWS's public SSM parameter for one Powertools release; these tests
tie that release to ``uv.lock`` (the version every test runs) and its Python version and
architecture to the function's, so that none of them can change without the others.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.unit.test_template_policy import Template, load_template

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = {"template.yaml": "RotationFunction", "fleet/template.yaml": "FleetFunction"}
SSM_REFERENCE = re.compile(
    r"^\{\{resolve:ssm:/aws/service/powertools/python/(?P<arch>[a-z0-9_]+)/"
    r"python(?P<python>\d+\.\d+)/(?P<version>\d+\.\d+\.\d+)\}\}$"
)
# Layer ARNs as AWS publishes them outside the commercial partition (Powertools' install page).
GOVCLOUD_ARN = (
    "arn:aws-us-gov:lambda:us-gov-west-1:165093116878:layer:"
    "AWSLambdaPowertoolsPythonV3-python313-arm64:27"
)
CHINA_ARN = (
    "arn:aws-cn:lambda:cn-north-1:498634801083:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:27"
)


def locked_powertools() -> str:
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    (version,) = {p["version"] for p in lock["package"] if p["name"] == "aws-lambda-powertools"}
    return str(version)


def load(name: str) -> Template:
    return load_template((ROOT / name).read_text(encoding="utf-8"))


NO_VALUE = object()


def evaluate(value: object, template: Template, parameters: dict[str, str]) -> Any:  # noqa: ANN401
    """Evaluate the intrinsics the layer wiring uses (Ref, If, Not, Equals, Condition)."""

    def recurse(inner: object) -> Any:  # noqa: ANN401
        return evaluate(inner, template, parameters)

    if isinstance(value, list):
        return [item for item in map(recurse, value) if item is not NO_VALUE]
    if not isinstance(value, dict):
        return value
    ((key, arg),) = value.items()
    conditions = template["Conditions"]
    operators: dict[str, Callable[[], Any]] = {
        "Ref": lambda: NO_VALUE if arg == "AWS::NoValue" else parameters[arg],
        "Condition": lambda: recurse(conditions[arg]),
        "Fn::Not": lambda: not recurse(arg[0]),
        "Fn::Equals": lambda: recurse(arg[0]) == recurse(arg[1]),
        "Fn::If": lambda: recurse(arg[1] if recurse(conditions[arg[0]]) else arg[2]),
    }
    return operators[key]()


def layers(name: str, value: str) -> list[str]:
    template = load(name)
    function = template["Resources"][TEMPLATES[name]]["Properties"]
    result: list[str] = evaluate(function["Layers"], template, {"PowertoolsLayerArn": value})
    return result


@pytest.mark.parametrize("name", TEMPLATES)
def test_the_default_layer_holds_the_locked_powertools_for_the_functions_runtime(
    name: str,
) -> None:
    # GIVEN the template as deployed with every default
    template = load(name)
    function = template["Globals"]["Function"]
    # WHEN the function's layers are worked out
    (reference,) = layers(name, template["Parameters"]["PowertoolsLayerArn"]["Default"])
    found = SSM_REFERENCE.match(reference)
    # THEN it is AWS's layer of the Powertools version the tests ran, for this runtime and arch
    assert found, reference
    assert found["version"] == locked_powertools()
    assert f"python{found['python']}" == function["Runtime"]
    assert [found["arch"]] == function["Architectures"]


@pytest.mark.parametrize("name", TEMPLATES)
def test_an_arn_replaces_the_default_layer_and_none_removes_it(name: str) -> None:
    # WHEN the parameter names a layer / says none / THEN that layer is used, or none at all
    assert layers(name, GOVCLOUD_ARN) == [GOVCLOUD_ARN]
    assert layers(name, "none") == []


@pytest.mark.parametrize("name", TEMPLATES)
def test_the_parameter_accepts_layer_arns_of_every_partition_and_nothing_else(name: str) -> None:
    pattern = load(name)["Parameters"]["PowertoolsLayerArn"]["AllowedPattern"]
    accepted = ["", "none", GOVCLOUD_ARN, CHINA_ARN, GOVCLOUD_ARN.replace("aws-us-gov", "aws")]
    refused = [
        "None",
        GOVCLOUD_ARN.rsplit(":", 1)[0],  # no version: Lambda needs a layer version ARN
        "arn:aws:lambda:us-east-1:017000801446:function:f",
        "{{resolve:ssm:/aws/service/powertools/python/arm64/python3.13/latest}}",
    ]
    assert all(re.fullmatch(pattern, value) for value in accepted)
    assert not any(re.fullmatch(pattern, value) for value in refused)


def test_both_templates_use_the_same_parameter() -> None:
    single, fleet = (load(name)["Parameters"]["PowertoolsLayerArn"] for name in TEMPLATES)
    assert single == fleet


def _make_dry_run(target: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    done = subprocess.run(  # noqa: S603 - make from PATH, targets written here
        ["make", "--no-print-directory", "-n", "-C", str(ROOT), target],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"make -n {target} failed here (no python3.13?): {done.stderr.strip()}")
    # A recipe line continued with a backslash is printed as written: join it first.
    commands = done.stdout.replace("\\\n", " ").splitlines()
    (line,) = [line for line in commands if "sam build" in line]
    return line


@pytest.mark.parametrize(
    ("target", "bundled"),
    [
        ("build", False),
        ("build-bundled", True),
        ("build-fleet", False),
        ("build-fleet-bundled", True),
    ],
)
def test_only_the_bundled_targets_build_with_the_bundled_manifest(
    target: str, *, bundled: bool
) -> None:
    # WHEN the target is planned / THEN its sam build reads src/requirements-bundled.txt or not
    line = _make_dry_run(target)
    assert ("--manifest src/requirements-bundled.txt" in line) is bundled
    assert ("--template-file fleet/template.yaml" in line) is ("fleet" in target)
