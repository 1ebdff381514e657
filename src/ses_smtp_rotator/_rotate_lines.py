"""The function's log lines as ``rotate --wait`` shows them: key ids masked, steps in words."""

from __future__ import annotations

import re
from typing import Any, Final

from ses_smtp_rotator._status_render import mask

_KEY_ID: Final = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")
_ACTIONS: Final = {"deactivate": "deactivated (Inactive)", "delete": "deleted"}


def masked(text: str) -> str:
    """Return ``text`` with every access key id in it masked.

    Examples
    --------
    >>> masked("key AKIAIOSFODNN7EXAMPLE refused")
    'key AKIA…MPLE refused'
    """
    return _KEY_ID.sub(lambda found: mask(found.group(0)), text)


def describe(line: dict[str, Any], text: str) -> tuple[str, str | None]:
    """Return one of the function's lines in words, and the old key's fate when it tells it."""
    key = masked(str(line.get("access_key_id", "")))
    if text == "created pending key":
        return f"new key {key} created, stored as the AWSPENDING version", None
    if text == "smtp login attempt":
        attempt, outcome = line.get("attempt"), line.get("outcome")
        return f"SMTP login attempt {attempt} with the new key: {outcome}", None
    if text == "smtp test":
        attempts = line.get("attempts")
        return (
            f"SMTP login with the new key: {line.get('outcome')} after {attempts} attempt(s)",
            None,
        )
    if text == "retired old key":
        action = _ACTIONS.get(str(line.get("action")), str(line.get("action")))
        fate = f"old key {key} {action}"
        return fate, fate
    if text == "old key stays Active for its grace period":
        fate = (
            f"old key {key} stays Active for its grace period (OLD_KEY_GRACE_PERIOD); "
            "the hourly sweep retires it afterwards"
        )
        return fate, fate
    level = str(line.get("level", "INFO"))
    return (text if level == "INFO" else f"{level}: {text}"), None
