"""The Secrets Manager rotation events in the top-level ``events/`` folder.

``sam local invoke RotationFunction -e events/createSecret.json`` reads the same files, so the
tests, the demo and the docs all exercise exactly what a developer can send to the function.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

EVENTS_DIR: Final = Path(__file__).resolve().parents[1] / "events"
"""The repository's ``events/`` folder, resolved from the repository root, not the cwd."""

STEPS: Final = ("createSecret", "setSecret", "testSecret", "finishSecret")
"""The rotation steps, in the order Secrets Manager invokes them; one event file each."""

BAD_EVENTS: Final = ("unknownStep", "missingToken")
"""Event files that the function must reject (a Step it does not know, no ClientRequestToken)."""


class EventFileError(ValueError):
    """An event name does not name a well-formed event file in ``events/``."""


def load_event(name: str, **overrides: str) -> dict[str, str]:
    """Read ``events/<name>.json`` and apply overrides.

    Parameters
    ----------
    name
        File name without ``.json``, e.g. ``"createSecret"``; must not contain a path.
    **overrides
        Keys to set or replace, e.g. ``SecretId=arn`` or ``ClientRequestToken=token`` to point
        the event at a secret and a rotation of the local world.

    Returns
    -------
    dict[str, str]
        A new dict each call, safe to mutate.

    Raises
    ------
    EventFileError
        If ``name`` is not a plain file name, or the file is not a JSON object of strings.
    FileNotFoundError
        If there is no such event file.

    Examples
    --------
    >>> load_event("setSecret", ClientRequestToken="t-1")["ClientRequestToken"]
    't-1'
    """
    if not name or Path(name).name != name or name.startswith("."):
        msg = f"event name {name!r} must be a file name in events/ without '.json'"
        raise EventFileError(msg)
    path = EVENTS_DIR / f"{name}.json"
    data: object = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in data.items()
    ):
        msg = f"{path.name} must hold a JSON object whose values are strings"
        raise EventFileError(msg)
    event: dict[str, str] = dict(data)
    event.update(overrides)
    return event
