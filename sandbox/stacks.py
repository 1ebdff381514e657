"""CloudFormation's side of an app's stack, as the key clean-up asks about it and answers it.

moto's CloudFormation cannot run a custom resource (that needs Lambda in Docker), so the local
world records an app's stack in moto with the resources the function asks about: the app's
secret and its ``Custom::SmtpUserKeys`` resource (physical id: the user). :func:`deleting`
then makes CloudFormation show the stack's resources as ``DELETE_IN_PROGRESS``, as it does while
it deletes the stack and sends the resource's Delete. Where the function answers in the local
world is :mod:`sandbox.answers`'s.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import TYPE_CHECKING, Final

import boto3
from moto.cloudformation.models import cloudformation_backends

if TYPE_CHECKING:
    from moto.cloudformation.models import Stack

    from sandbox.world import World

KEYS_RESOURCE: Final = "SmtpUserKeys"
# The stack is created empty; its resources are recorded below, as CloudFormation would list them.
_PLACEHOLDER: Final[dict[str, object]] = {"Resources": {}}


def deploy(world: World, *, stack_name: str, user: str, secret_arn: str) -> str:
    """Record an app stack holding ``secret_arn`` and the clean-up of ``user``; return its id."""
    cfn = boto3.session.Session(region_name=world.region).client("cloudformation")
    stack_id = str(
        cfn.create_stack(StackName=stack_name, TemplateBody=json.dumps(_PLACEHOLDER))["StackId"]
    )
    resources = _stack(world, stack_id).resource_map
    for logical_id, kind, physical_id in (
        ("SmtpSecret", "AWS::SecretsManager::Secret", secret_arn),
        (KEYS_RESOURCE, "Custom::SmtpUserKeys", user),
    ):
        resources._resource_json_map[logical_id] = {"Type": kind}  # noqa: SLF001 - moto's model
        resources._parsed_resources[logical_id] = SimpleNamespace(  # noqa: SLF001 - moto's model
            logical_resource_id=logical_id, physical_resource_id=physical_id, cf_resource_type=kind
        )
    return stack_id


def deleting(world: World, stack_id: str) -> None:
    """Make CloudFormation show the stack, and so each of its resources, being deleted."""
    _stack(world, stack_id).status = "DELETE_IN_PROGRESS"


def _stack(world: World, stack_id: str) -> Stack:
    return cloudformation_backends[world.driver.account_id][world.region].stacks[stack_id]
