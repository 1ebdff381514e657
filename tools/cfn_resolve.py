"""Read a CloudFormation or SAM template and resolve its intrinsic functions to sample values.

Only what an IAM policy check needs: every ``Ref``, ``Fn::GetAtt``, ``Fn::Sub``, ``Fn::Join``,
``Fn::Select``, ``Fn::Split`` and ``Fn::If`` becomes a plausible literal (sample account, region
and partition; a parameter's default, or an ARN of the service its ``AllowedPattern`` names; a
resource's ARN or name by its type). ``Fn::If`` takes one branch for every condition at once:
resolving a template twice, all conditions true and all false, checks both branches of each.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

from tools import cfn_yaml

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

ACCOUNT: Final = "123456789012"
REGION: Final = "us-east-1"
PSEUDO: Final = {
    "AWS::Partition": "aws",
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::StackName": "example-stack",
    "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/example-stack/id",
    "AWS::URLSuffix": "amazonaws.com",
}
# Sample ARNs of the services a parameter's AllowedPattern may name (":<service>:" in it).
SAMPLE_ARNS: Final = {
    "kms": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "ses": f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/example.com",
    "sns": f"arn:aws:sns:{REGION}:{ACCOUNT}:example-topic",
    "lambda": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:example-function",
    "iam": f"arn:aws:iam::{ACCOUNT}:role/example-role",
    "sqs": f"arn:aws:sqs:{REGION}:{ACCOUNT}:example-queue",
}
# What Ref and GetAtt .Arn of a resource return, by type ({id}: its logical id).
REF_OF_TYPE: Final = {
    "AWS::SecretsManager::Secret": (
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{{id}}-AbCdEf"
    ),
    "AWS::SNS::Topic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{{id}}",
    "AWS::SQS::Queue": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{{id}}",
}
ARN_OF_TYPE: Final = {
    "AWS::Serverless::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{{id}}",
    "AWS::Lambda::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{{id}}",
    "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{{id}}",
    "AWS::IAM::User": f"arn:aws:iam::{ACCOUNT}:user/{{id}}",
    "AWS::Events::Rule": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{{id}}",
    "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{{id}}",
    "AWS::SNS::Topic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{{id}}",
    "AWS::Scheduler::Schedule": f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/{{id}}",
}
# Samples for parameters whose AllowedPattern names no service: (a fragment of it, the sample).
PATTERN_SAMPLES: Final = ((r"\d{12}(,\d{12})", f"{ACCOUNT},210987654321"),)
SUB_VARIABLE: Final = re.compile(r"\$\{([^}!]+)\}")


class ResolveError(ValueError):
    """A template uses an intrinsic function or a name this resolver cannot turn into a value."""


class NoValue:
    """``AWS::NoValue``: removed from the list or mapping that holds it."""


NO_VALUE: Final = NoValue()


def load(path: Path) -> dict[str, Any]:
    """Parse a template file (YAML with CloudFormation's short forms, or JSON; see cfn_yaml)."""
    data = cfn_yaml.parse(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        msg = f"{path}: not a template (no mapping at the top)"
        raise ResolveError(msg)
    return data


class Resolver:
    """Turn the intrinsic functions of one template into sample values."""

    def __init__(self, template: dict[str, Any], *, conditions: bool) -> None:
        """Resolve with every condition ``conditions`` (True: each ``Fn::If``'s first branch)."""
        self.conditions = conditions
        self.parameters: dict[str, Any] = template.get("Parameters") or {}
        self.resources: dict[str, Any] = template.get("Resources") or {}
        self.functions: dict[str, Callable[[Any], Any]] = {
            "Ref": self._ref,
            "Fn::GetAtt": self._get_att,
            "Fn::Sub": self._sub,
            "Fn::Join": lambda v: str(self(v[0])).join(str(p) for p in self._list(v[1])),
            "Fn::Select": lambda v: self._list(v[1])[int(self(v[0]))],
            "Fn::Split": lambda v: str(self(v[1])).split(str(self(v[0]))),
            "Fn::If": lambda v: self(v[1] if self.conditions else v[2]),
        }

    def __call__(self, node: Any) -> Any:  # noqa: ANN401 - any YAML value
        """Return ``node`` with every intrinsic function resolved and NoValue removed."""
        if isinstance(node, dict):
            if len(node) == 1:
                ((key, value),) = node.items()
                if key in self.functions:
                    return self.functions[key](value)
                if key.startswith("Fn::"):
                    msg = f"{key} is not resolved by tools.cfn_resolve"
                    raise ResolveError(msg)
            items = ((key, self(value)) for key, value in node.items())
            return {key: value for key, value in items if value is not NO_VALUE}
        if isinstance(node, list):
            return self._list(node)
        return node

    def _list(self, node: Any) -> list[Any]:  # noqa: ANN401 - any YAML value
        resolved = self(node) if not isinstance(node, list) else node
        if not isinstance(resolved, list):
            msg = f"expected a list, got {resolved!r}"
            raise ResolveError(msg)
        values = (self(item) for item in resolved)
        return [value for value in values if value is not NO_VALUE]

    def _ref(self, name: str) -> Any:  # noqa: ANN401 - a parameter's value may be a list
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            return self._sample(name, self.parameters[name] or {})
        if name in self.resources:
            kind = str(self.resources[name].get("Type", ""))
            return REF_OF_TYPE.get(kind, "{id}").format(id=name)
        msg = f"Ref to an unknown name: {name}"
        raise ResolveError(msg)

    def _sample(self, name: str, parameter: dict[str, Any]) -> Any:  # noqa: ANN401
        default = str(parameter.get("Default", ""))
        pattern = str(parameter.get("AllowedPattern", ""))
        value = default
        if not default:
            services = [s for s in SAMPLE_ARNS if f":{s}:" in pattern]
            samples = [sample for fragment, sample in PATTERN_SAMPLES if fragment in pattern]
            value = (SAMPLE_ARNS[services[0]] if services else None) or next(
                iter(samples), f"example-{name}"
            )
        if str(parameter.get("Type", "")) == "CommaDelimitedList":
            return value.split(",")
        return value

    def _get_att(self, value: list[str]) -> str:
        name, attribute = value
        kind = str(self.resources.get(name, {}).get("Type", ""))
        if attribute != "Arn" or name not in self.resources:
            return f"{name}-{attribute}"
        if kind in ARN_OF_TYPE:
            return ARN_OF_TYPE[kind].format(id=name)
        service = kind.split("::")[1].lower() if kind.count("::") == 2 else "unknown"  # noqa: PLR2004
        return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{name}"

    def _sub(self, value: str | list[Any]) -> str:
        text, variables = (value, {}) if isinstance(value, str) else (value[0], value[1])
        local = {key: self(item) for key, item in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in local:
                return str(local[name])
            if "." in name:
                return self._get_att(name.split(".", 1))
            return str(self._ref(name))

        return SUB_VARIABLE.sub(substitute, str(text))
