"""The one reader of CloudFormation and SAM templates: YAML with the short forms, or JSON.

Used by the build-time checks (:mod:`tools.cfn_resolve`, hence :mod:`tools.policy_check`), by the
local world's ``sam local invoke`` side (:mod:`sandbox.local_sam`) and by the template tests.
It needs only PyYAML, and nothing the function ships imports it.

Short forms become the long forms CloudFormation itself uses: ``!Sub x`` is ``{"Fn::Sub": x}``,
``!Ref X`` is ``{"Ref": "X"}``, ``!Condition C`` is ``{"Condition": "C"}`` and ``!GetAtt A.B``
is ``{"Fn::GetAtt": ["A", "B"]}``. Each mapping (a tag's too) is a :class:`Located`: a plain
``dict`` for every other purpose, it also remembers its lines, so that a check can read the
comment above a statement. Mapping keys are strings, as CloudFormation reads them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from collections.abc import Iterator

# Short forms whose long form has no ``Fn::`` prefix.
_UNPREFIXED = frozenset({"Ref", "Condition"})


class Located(dict[str, Any]):
    """A YAML mapping that remembers the line (0-based) of itself and of each of its keys."""

    first_line: int = -1
    key_lines: dict[str, int]


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation short forms: ``!Sub x`` becomes ``{"Fn::Sub": x}``."""


def _construct_map(loader: CfnLoader, node: yaml.MappingNode) -> Iterator[Located]:
    # Yield the mapping before filling it, as PyYAML's own constructors do (anchors may recur).
    data = Located()
    data.first_line = node.start_mark.line
    data.key_lines = {str(key.value): key.start_mark.line for key, _ in node.value}
    yield data
    data.update(
        {str(key): value for key, value in loader.construct_mapping(node, deep=True).items()}
    )


def _construct_tag(loader: CfnLoader, suffix: str, node: yaml.Node) -> Located:
    value: object
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)  # noqa: S101 - yaml has no fourth node kind
        value = loader.construct_mapping(node, deep=True)
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    data = Located({suffix if suffix in _UNPREFIXED else f"Fn::{suffix}": value})
    data.first_line = node.start_mark.line
    data.key_lines = {}
    return data


CfnLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
CfnLoader.add_multi_constructor("!", _construct_tag)


def parse(text: str) -> Any:  # noqa: ANN401 - whatever the document holds (a template: a mapping)
    """Return the data of a template's text, its short forms in their long forms.

    Parameters
    ----------
    text
        A template's text: YAML (short forms allowed) or JSON.

    Returns
    -------
    Any
        The document's data; a template's is a :class:`Located` mapping.
    """
    return yaml.load(text, Loader=CfnLoader)  # noqa: S506 - a SafeLoader subclass
