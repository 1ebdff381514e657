"""An ``aws <service> <operation> --option value ...`` line, run through boto3 as the CLI runs it.

The docs' and the status commands' ``aws`` lines are run this way by the tests and the benchmarks
(the AWS CLI itself is not a dependency): ``$NAME`` is expanded as a shell does inside double
quotes, and each ``--option value`` becomes the operation's parameter of that name.
"""

from __future__ import annotations

import os
import re
import shlex
from typing import TYPE_CHECKING, Any

import boto3

if TYPE_CHECKING:
    from collections.abc import Callable


def expand(argv: list[str], env: dict[str, str]) -> list[str]:
    """Expand ``$NAME`` in each word as the shell does inside double quotes."""
    return [re.sub(r"\$(\w+)", lambda m: env.get(m.group(1), ""), word) for word in argv]


def aws(command: str) -> dict[str, Any]:
    """Run an ``aws <service> <operation> --option value ...`` line through boto3, like the CLI."""
    service, operation, *options = expand(shlex.split(command), dict(os.environ))[1:]
    params: dict[str, str] = {}
    while options:
        name, value = options.pop(0), options.pop(0)
        if not name.startswith("--"):
            msg = f"not an option: {name}"
            raise ValueError(msg)
        params["".join(part.capitalize() for part in name[2:].split("-"))] = value
    client: Any = boto3.client(service)  # type: ignore[call-overload]
    name = client.meta.method_to_api_mapping[operation.replace("-", "_")]
    members = client.meta.service_model.operation_model(name).input_shape.members
    # The CLI takes a list parameter as one or more words; here each list has one item. A list
    # of structures takes the CLI's shorthand, Key=value,Other=value.
    wrapped: dict[str, Any] = {
        k: [_shorthand(v) if members[k].member.type_name == "structure" else v]
        if members[k].type_name == "list"
        else v
        for k, v in params.items()
    }
    method: Callable[..., dict[str, Any]] = getattr(client, operation.replace("-", "_"))
    return method(**wrapped)


def _shorthand(value: str) -> dict[str, str]:
    """Parse the AWS CLI's shorthand for one structure (``Key=a,Value=b``)."""
    return dict(pair.split("=", 1) for pair in value.split(","))
