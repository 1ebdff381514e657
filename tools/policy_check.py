"""Check every IAM policy of the templates and the docs against AWS's policy language.

``python -m tools.policy_check [FILE ...]`` (default: ``template.yaml``, ``fleet/*.yaml`` and
``docs/*.md``). Each policy document is handed to parliament, which knows from AWS's Service
Authorization Reference which actions exist, which condition keys each action takes, and each
key's type; a finding fails the check: an unknown action or prefix, a condition key the action
does not take, an operator of the wrong type for its key (``ArnLike`` on a String key), a
malformed statement. Every finding fails but those :data:`IGNORED` lists, each with its reason
(today only ``RESOURCE_STAR``, which the house tests own).

Templates: every mapping with a ``Statement`` anywhere in a resource's properties (inline role,
user and group policies, trust policies, topic, queue, key and bucket policies, a SAM function's
inline ``Policies``), each ``AWS::Lambda::Permission`` as the statement Lambda adds to the
function's resource policy, and a SAM function's policy templates (``SQSPollerPolicy: {...}``)
resolved with aws-sam-translator's own definitions (from ``.venv-sam``; a template that cannot be
resolved is a failure). Intrinsic functions become sample values (``tools.cfn_resolve``), once
with every condition true and once with every condition false, so both branches of each
``Fn::If`` are read.
Docs: every fenced ``json`` block that is a policy or a lone statement.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from tools import cfn_resolve

with warnings.catch_warnings():
    # parliament 1.6.4 imports pkg_resources, which warns that it is deprecated.
    warnings.simplefilter("ignore")
    import parliament

ROOT: Final = Path(__file__).resolve().parent.parent
DEFAULT_FILES: Final = ("template.yaml", "fleet/*.yaml", "docs/*.md")
JSON_BLOCK: Final = re.compile(r"^```json\n(.*?)^```", re.MULTILINE | re.DOTALL)
# A trust policy has no Resource; the role it belongs to is the resource.
TRUST_KEY: Final = "AssumeRolePolicyDocument"
# Findings that do not fail the check, each with the reason.
IGNORED: Final = {
    "RESOURCE_STAR": (
        "Resource * is the house tests' business: tests/unit/test_template_policy.py and "
        "test_fleet_templates.py require a justification: comment on every unscoped statement, "
        "and in a key or resource policy * means the resource the policy is attached to"
    ),
}
SAM_FUNCTION: Final = "AWS::Serverless::Function"
SAM_TEMPLATES_PATH: Final = "samtranslator/policy_templates_data/policy_templates.json"


@dataclass(frozen=True)
class Policy:
    """One policy document and where it comes from."""

    where: str
    document: dict[str, Any]


def findings(policy: Policy) -> list[str]:
    """Return parliament's findings on one policy, one line each, naming where it is."""
    try:
        result = parliament.analyze_policy_string(json.dumps(policy.document))
    except Exception as error:  # noqa: BLE001 - parliament fails on shapes it cannot read
        return [f"{policy.where}: UNREADABLE: {type(error).__name__}: {error}"]
    return [
        f"{policy.where}: {finding.issue}: {finding.detail}"
        for finding in result.findings
        if finding.issue not in IGNORED
    ]


def _as_policy(node: dict[str, Any], *, resource: str | None) -> dict[str, Any]:
    """Return a copy of ``node`` as a policy; ``resource`` fills a Resource statements lack.

    A statement with a Principal and no Resource belongs to a resource-based policy (a trust
    policy): the resource is the one it is attached to, ``resource`` or else ``*``.
    """
    statements = node.get("Statement", node)
    statements = statements if isinstance(statements, list) else [statements]
    filled = [
        {"Resource": resource or "*", **s} if "Principal" in s and "NotResource" not in s else s
        for s in statements
    ]
    return {"Version": node.get("Version", "2012-10-17"), "Statement": filled}


def _documents(node: Any, path: str) -> list[tuple[str, dict[str, Any]]]:  # noqa: ANN401
    """Every mapping holding a ``Statement`` under ``node``, with its property path."""
    if isinstance(node, dict):
        if "Statement" in node:
            return [(path, node)]
        return [d for key, value in node.items() for d in _documents(value, f"{path}.{key}")]
    if isinstance(node, list):
        return [d for i, value in enumerate(node) for d in _documents(value, f"{path}[{i}]")]
    return []


def sam_policy_templates() -> dict[str, Any] | None:
    """aws-sam-translator's policy templates: importable here, or in ``.venv-sam``; else None."""
    spec = importlib.util.find_spec("samtranslator")
    candidates = (
        [Path(spec.origin).parent.parent / SAM_TEMPLATES_PATH] if spec and spec.origin else []
    )
    candidates += sorted(ROOT.glob(f".venv-sam/lib/python*/site-packages/{SAM_TEMPLATES_PATH}"))
    for candidate in candidates:
        if candidate.is_file():
            data: dict[str, Any] = json.loads(candidate.read_text(encoding="utf-8"))
            return dict(data["Templates"])
    return None


def _sam_template_policies(
    template: dict[str, Any],
    name: str,
    policies: Any,  # noqa: ANN401 - a list, or one item
    resolver: cfn_resolve.Resolver,
) -> tuple[list[Policy], list[str]]:
    """Return a SAM function's policy templates, each resolved to its definition."""
    items = policies if isinstance(policies, list) else [policies]
    found: list[Policy] = []
    problems: list[str] = []
    definitions: dict[str, Any] | None = None
    for index, item in enumerate(items):
        if not isinstance(item, dict) or "Statement" in item or len(item) != 1:
            continue  # a managed policy's name or ARN, or an inline document (read elsewhere)
        ((template_name, values),) = item.items()
        where = f"{name}.Policies[{index}] ({template_name})"
        definitions = definitions if definitions is not None else sam_policy_templates()
        if definitions is None or template_name not in definitions:
            problems.append(f"{where}: SAM policy template not resolvable (no aws-sam-translator)")
            continue
        parameters = {key: {"Default": resolver(value)} for key, value in (values or {}).items()}
        inner = cfn_resolve.Resolver(
            {"Parameters": parameters, "Resources": template.get("Resources", {})},
            conditions=resolver.conditions,
        )
        found.append(
            Policy(
                where, _as_policy(inner(definitions[template_name]["Definition"]), resource=None)
            )
        )
    return found, problems


def _name(path: Path) -> str:
    """Return the path relative to the repository when it is in it, else as given."""
    resolved = path.resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(path)


def _permission_policy(properties: dict[str, Any]) -> dict[str, Any]:
    """Return the resource-policy statement an ``AWS::Lambda::Permission`` adds to its function."""
    principal = str(properties.get("Principal", ""))
    conditions: dict[str, dict[str, str]] = {}
    if "SourceAccount" in properties:
        conditions["StringEquals"] = {"aws:SourceAccount": str(properties["SourceAccount"])}
    if "SourceArn" in properties:
        conditions["ArnLike"] = {"aws:SourceArn": str(properties["SourceArn"])}
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": principal}
        if principal.endswith(".amazonaws.com")
        else {"AWS": principal},
        "Action": properties.get("Action"),
        "Resource": properties.get("FunctionName"),
        **({"Condition": conditions} if conditions else {}),
    }
    return {"Version": "2012-10-17", "Statement": [statement]}


def template_policies(path: Path) -> tuple[list[Policy], list[str]]:
    """Every policy of one template, resolved both ways; and what could not be resolved."""
    template = cfn_resolve.load(path)
    found: list[Policy] = []
    problems: list[str] = []
    for conditions in (True, False):
        resolver = cfn_resolve.Resolver(template, conditions=conditions)
        label = "conditions true" if conditions else "conditions false"
        for name, resource in (template.get("Resources") or {}).items():
            where = f"{_name(path)}: {name} ({label})"
            try:
                properties = resolver(resource.get("Properties") or {})
            except cfn_resolve.ResolveError as error:
                problems.append(f"{where}: {error}")
                continue
            if resource.get("Type") == "AWS::Lambda::Permission":
                found.append(Policy(f"{where}", _permission_policy(properties)))
            role_arn = cfn_resolve.ARN_OF_TYPE["AWS::IAM::Role"].format(id=name)
            for key_path, node in _documents(properties, ""):
                resource_arn = role_arn if key_path.endswith(TRUST_KEY) else None
                found.append(Policy(f"{where}{key_path}", _as_policy(node, resource=resource_arn)))
            if resource.get("Type") == SAM_FUNCTION and "Policies" in properties:
                more, unresolved = _sam_template_policies(
                    template, f"{where}", properties["Policies"], resolver
                )
                found += more
                problems += unresolved
    return found, problems


def doc_policies(path: Path) -> list[Policy]:
    """Every fenced ``json`` block of a Markdown file that is a policy or a statement."""
    text = path.read_text(encoding="utf-8")
    found = []
    for match in JSON_BLOCK.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        try:
            node = json.loads(match.group(1))
        except json.JSONDecodeError:
            continue  # not JSON (an example with placeholders): the docs test reads those
        if isinstance(node, dict) and ("Statement" in node or "Effect" in node):
            found.append(Policy(f"{_name(path)}:{line}", _as_policy(node, resource=None)))
    return found


def check(paths: list[Path]) -> tuple[int, list[str]]:
    """Return how many policies were read and every problem found in them."""
    count = 0
    problems: list[str] = []
    for path in paths:
        if path.suffix == ".md":
            policies = doc_policies(path)
        else:
            policies, unresolved = template_policies(path)
            problems += unresolved
        count += len(policies)
        for policy in policies:
            problems += findings(policy)
    return count, problems


def main(argv: list[str] | None = None) -> int:
    """Check the files (default: the templates and docs); 1 when any policy has a finding."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("files", nargs="*", type=Path, help="templates (.yaml/.json) or .md files")
    args = parser.parse_args(argv)
    paths = args.files or [p for pattern in DEFAULT_FILES for p in sorted(ROOT.glob(pattern))]
    count, problems = check(paths)
    for problem in problems:
        sys.stderr.write(f"{problem}\n")
    if count == 0:
        sys.stderr.write("no policy found: nothing was checked\n")
        return 1
    sys.stdout.write(f"{count} policies in {len(paths)} files: {len(problems)} problems\n")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
