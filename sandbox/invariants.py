"""The rotation invariants (docs/rotation.md), checked against a running local world.

``violations(world)`` returns what is wrong (empty when all hold), so a test, the fault matrix
and the demo report every broken invariant at once rather than the first.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from moto.iam.models import iam_backends

from sandbox.secrets_manager import CURRENT, PREVIOUS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sandbox.world import World

MAX_KEYS = 2


def referenced_keys(world: World) -> dict[str, list[str]]:
    """Return access key id -> staging labels of every version whose value holds that key."""
    found: dict[str, list[str]] = {}
    for version in world.driver._secret().versions.values():  # noqa: SLF001 - the world's own driver
        try:
            value: dict[str, Any] = json.loads(version.get("secret_string", "{}"))
        except ValueError:
            continue
        key = value.get("access_key_id") if isinstance(value, dict) else None
        if key:
            found.setdefault(key, []).extend(version["version_stages"])
    return found


def violations(
    world: World, *, foreign: frozenset[str] = frozenset(), login: bool = True
) -> list[str]:
    """Check the invariants that must hold between any two AWS calls; return the broken ones.

    ``foreign`` lists keys created outside the function (they may be unreferenced).
    ``login`` also checks that AWSCURRENT's credentials log in over SMTP.
    """
    problems: list[str] = []
    keys = world.access_keys()
    if len(keys) > MAX_KEYS:
        problems.append(f"{len(keys)} access keys exist (limit {MAX_KEYS})")
    referenced = referenced_keys(world)
    orphans = sorted(set(keys) - set(referenced) - foreign)
    if orphans:
        problems.append(f"orphan keys no version references: {orphans}")
    # The live key: AWSCURRENT's, or AWSPREVIOUS's while a bootstrap value written over AWSCURRENT
    # (a stack update) holds none; readers of either must keep a working password.
    labelled = {stage: key for key, stages in referenced.items() for stage in stages}
    stage = CURRENT if CURRENT in labelled else PREVIOUS
    live = labelled.get(stage)
    if live:
        if keys.get(live) != "Active":
            problems.append(f"{stage}'s live key {live} is {keys.get(live, 'deleted')}")
        elif login and not world.login(stage).ok:
            problems.append(f"{stage}'s credentials do not log in over SMTP")
    return problems


def cross_app_violations(worlds: Sequence[World]) -> list[str]:
    """Check apps sharing one AWS (a fleet): no app's secret holds a key of another app's user.

    Each world is one app's view (its user, its secret's driver). A key a secret references must
    be its own user's or gone; a key of one user referenced by another app's secret means a
    rotation crossed apps.
    """
    if not worlds:
        return []
    backend = iam_backends[worlds[0].driver.account_id]["global"]
    owner = {
        key.access_key_id: user.name for user in backend.users.values() for key in user.access_keys
    }
    return [
        f"secret {world.secret_arn} references key {key} of user {owner[key]}, "
        f"not of its own user {world.user_name}"
        for world in worlds
        for key in sorted(referenced_keys(world))
        if key in owner and owner[key] != world.user_name
    ]
