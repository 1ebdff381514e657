"""What an invocation's event claims, checked before anything else reads it.

Three kinds of event reach the function: a rotation step from Secrets Manager, the sweep's
``{"Action": "RetireOldKeys", ...}`` from a schedule, and a CloudFormation custom resource request.
Each field is a claim from whoever invoked the function: it is checked for shape here, and an
error quotes at most a short, printable part of it (never a whole field: a token of 100,000
characters, or of NUL bytes, must not reach a log line or a message).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from rotation_handler.exceptions import BadEventError, UnknownStepError

if TYPE_CHECKING:
    from collections.abc import Mapping

STEP_NAMES: Final = ("createSecret", "setSecret", "testSecret", "finishSecret")
# Secrets Manager's own bounds: a ClientRequestToken has 32-64 characters, a SecretId at most
# 2048; both are printable ASCII without spaces.
_MAX_TOKEN: Final = 64
_MAX_SECRET_ID: Final = 2048
_EXCERPT: Final = 40


class Kind(StrEnum):
    """Which of the function's three jobs an event asks for."""

    STEP = "step"
    SWEEP = "sweep"
    CUSTOM_RESOURCE = "custom-resource"


def excerpt(value: object) -> str:
    """Return a short, printable rendering of a claimed value for messages and logs.

    Examples
    --------
    >>> excerpt("abc")
    "'abc'"
    >>> excerpt("x" * 100)
    "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'... (100 characters)"
    """
    if not isinstance(value, str):
        return f"a {type(value).__name__}"
    shown = repr(value[:_EXCERPT])
    if len(shown) > _EXCERPT + 2:
        shown = repr(value[: _EXCERPT // 4])
    return shown if len(value) <= _EXCERPT else f"{shown}... ({len(value)} characters)"


def kind_of(event: object) -> Kind:
    """Return which job ``event`` asks for.

    Raises
    ------
    BadEventError
        The event is not a JSON object (``null``, a list, a string, a number).
    """
    if not isinstance(event, dict):
        msg = (
            f"the event is {excerpt(event)}, not a JSON object: the function takes a rotation "
            'step from Secrets Manager, the sweep\'s {"Action": "RetireOldKeys", "SecretId": ...}'
            " or a CloudFormation custom resource request"
        )
        raise BadEventError(msg)
    if "RequestType" in event:
        return Kind.CUSTOM_RESOURCE
    return Kind.SWEEP if "Action" in event else Kind.STEP


@dataclass(frozen=True, kw_only=True)
class StepEvent:
    """A rotation step's event, its fields checked."""

    step: str
    secret_id: str
    token: str
    # Required by PutSecretValue when present; never logged, never in a repr.
    rotation_token: str | None = field(default=None, repr=False)


def step_event(event: Mapping[str, Any]) -> StepEvent:
    """Check a rotation step's event.

    Raises
    ------
    UnknownStepError
        ``Step`` is not one of the four rotation steps.
    BadEventError
        ``SecretId`` or ``ClientRequestToken`` is missing or not what Secrets Manager sends.
    """
    step = event.get("Step")
    if step not in STEP_NAMES:
        msg = f"unknown rotation step {excerpt(step)}: expected one of {', '.join(STEP_NAMES)}"
        raise UnknownStepError(msg)
    secret_id, token = event.get("SecretId"), event.get("ClientRequestToken")
    if not secret_id or not token:
        msg = "the event needs SecretId and ClientRequestToken (a Secrets Manager rotation event)"
        raise BadEventError(msg)
    checked_id = identifier(secret_id, name="SecretId", longest=_MAX_SECRET_ID)
    checked_token = identifier(token, name="ClientRequestToken", longest=_MAX_TOKEN)
    rotation_token = event.get("RotationToken")
    return StepEvent(
        step=str(step),
        secret_id=checked_id,
        token=checked_token,
        rotation_token=rotation_token
        if isinstance(rotation_token, str) and rotation_token
        else None,
    )


def identifier(value: object, *, name: str, longest: int) -> str:
    """Return ``value`` if it is printable ASCII without spaces, 1 to ``longest`` characters.

    Raises
    ------
    BadEventError
        Anything else; the message quotes a short, printable part of it.
    """
    if (
        isinstance(value, str)
        and 0 < len(value) <= longest
        and value.isascii()
        and value.isprintable()
        and " " not in value
    ):
        return value
    msg = (
        f"the event's {name} is {excerpt(value)}: expected 1-{longest} printable characters, as "
        "Secrets Manager sends"
    )
    raise BadEventError(msg)
