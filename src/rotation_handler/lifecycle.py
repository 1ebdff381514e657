"""Which of an SMTP user's access keys may go, and when: the one place that decides.

createSecret classifies every key and frees a slot under IAM's two-key limit
(:func:`classify`, :func:`make_room`); finishSecret retires the key that stopped being live
(:func:`retire`), at once or after the grace period the sweep waits out (:func:`due_at`); the
key clean-up deletes every key of a user whose stack is going (:func:`delete_user_keys`). Which
key may make room:

==========================  ===================================================================
class                       may it go?
==========================  ===================================================================
live                        never: AWSCURRENT's key, or, while AWSCURRENT holds no credentials
                            (a bootstrap value written over it), the key of AWSPREVIOUS
foreign                     never: no version of this secret holds it and no record says this
                            function made it; if it holds the limit, the step fails naming it
ours, unlabelled            first: the key a run made and never stored (the intent vouches for
                            it), or a key held only by a version without labels (cancelled)
old, Inactive               next
old, Active                 last, with a warning: it is retired before its time
==========================  ===================================================================

Whether this secret may act on the user at all is the gate's (:mod:`rotation_handler.gate`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from rotation_handler import gate, keys, records, versions
from rotation_handler.exceptions import ForeignKeyError, error_code
from rotation_handler.observability import logger, metrics
from rotation_handler.settings import OldKeyAction
from rotation_handler.state import CURRENT, PREVIOUS
from ses_smtp_rotator.contract import FUNCTION_TAGS

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    from mypy_boto3_iam import IAMClient

    from rotation_handler.context import LabelledVersions, StepContext
    from rotation_handler.records import AccessKey, User, UserRecords
    from rotation_handler.state import SecretState
    from ses_smtp_rotator.secret import SmtpSecret


class KeyClass(StrEnum):
    """What a key of the user is to this secret (see the module's table)."""

    LIVE = "live"
    FOREIGN = "foreign"
    OURS_UNLABELLED = "ours-unlabelled"
    OLD_INACTIVE = "old-inactive"
    OLD_ACTIVE = "old-active"


# The classes that may make room, in the order they go.
ROOM_ORDER: Final = (KeyClass.OURS_UNLABELLED, KeyClass.OLD_INACTIVE, KeyClass.OLD_ACTIVE)
INTENT: Final = "intent"


@dataclass(frozen=True, kw_only=True)
class ClassifiedKey:
    """One key of the user, its class and what holds it (a stage, a version id, the intent)."""

    key: AccessKey
    kind: KeyClass
    held_by: str = ""


def classify(
    ctx: StepContext,
    existing: Iterable[AccessKey],
    *,
    seen: LabelledVersions,
    records: UserRecords,
) -> list[ClassifiedKey]:
    """Return every key of the user with its class (without searching unlabelled versions)."""
    existing = list(existing)
    live = seen.live
    protected = {seen.current.access_key_id, live.access_key_id if live else None} - {None}
    now_current, arn = ctx.state.version_with(CURRENT), ctx.state.arn

    def holder(key_id: str) -> str | None:
        # AWSPREVIOUS's key, read or (when not read) shown by the record of the current rotation.
        held = seen.holder(key_id)
        shown = records.intent is not None and records.intent.held_live(
            key_id, current_version=now_current, secret_arn=arn
        )
        return held or (PREVIOUS if seen.previous is None and shown else None)

    unreferenced = [
        k for k in existing if k.access_key_id not in protected and not holder(k.access_key_id)
    ]
    orphan = None
    if records.intent is not None and unreferenced:
        orphan = records.intent.orphan(
            existing, token=ctx.token, staged=ctx.state.staged(), secret_arn=ctx.state.arn
        )
    out = []
    for key in existing:
        stage = holder(key.access_key_id)
        if key.access_key_id in protected:
            out.append(ClassifiedKey(key=key, kind=KeyClass.LIVE, held_by=stage or PREVIOUS))
        elif stage is not None:
            kind = KeyClass.OLD_ACTIVE if key.active else KeyClass.OLD_INACTIVE
            out.append(ClassifiedKey(key=key, kind=kind, held_by=stage))
        elif key == orphan:
            out.append(ClassifiedKey(key=key, kind=KeyClass.OURS_UNLABELLED, held_by=INTENT))
        else:
            out.append(ClassifiedKey(key=key, kind=KeyClass.FOREIGN))
    return out


def make_room(ctx: StepContext, user: str, classified: list[ClassifiedKey]) -> list[AccessKey]:
    """Delete our orphan, then free a slot if IAM's limit is reached; return the keys left.

    Raises
    ------
    ForeignKeyError
        Only live and foreign keys are left, and they hold the limit.
    """
    for item in classified:
        if item.held_by == INTENT:
            keys.delete(ctx.iam, user, item.key.access_key_id)
    left = [item for item in classified if item.held_by != INTENT]
    if len(left) < keys.MAX_KEYS:
        return [item.key for item in left]
    if not any(item.kind in ROOM_ORDER for item in left):
        left = _search_unlabelled(ctx, left)
    candidates = sorted(
        (item for item in left if item.kind in ROOM_ORDER),
        key=lambda i: (ROOM_ORDER.index(i.kind), i.key.active),  # Inactive first within a class
    )
    if not candidates:
        raise ForeignKeyError(_foreign_message(user, left))
    victim = candidates[0]
    if victim.kind is KeyClass.OLD_ACTIVE:
        logger.warning(
            "deleting an old key that is still Active to make room (a grace period it was in "
            "ends now: readers still using it get 535 until they re-read the secret)",
            extra={"access_key_id": victim.key.access_key_id},
        )
    keys.delete(ctx.iam, user, victim.key.access_key_id)
    return [item.key for item in left if item is not victim]


def _search_unlabelled(ctx: StepContext, left: list[ClassifiedKey]) -> list[ClassifiedKey]:
    """Reclassify foreign keys that a version without labels holds (a cancelled rotation's)."""
    skip = {ctx.state.version_with(CURRENT), ctx.state.version_with(PREVIOUS), ctx.token} - {None}
    holders = versions.key_holders(ctx.sm, ctx.state.arn, skip={str(v) for v in skip})
    return [
        ClassifiedKey(key=item.key, kind=KeyClass.OURS_UNLABELLED, held_by=holders[key_id])
        if item.kind is KeyClass.FOREIGN and (key_id := item.key.access_key_id) in holders
        else item
        for item in left
    ]


def _foreign_message(user: str, left: list[ClassifiedKey]) -> str:
    foreign = [item.key.access_key_id for item in left if item.kind is KeyClass.FOREIGN]
    names = ", ".join(foreign) or "none"
    return (
        f"IAM user {user} already has {keys.MAX_KEYS} access keys and {names} is referenced by "
        "no version of the secret and this function has no record of creating it, so it is left "
        "alone. "
        f"Delete it if nothing uses it (aws iam delete-access-key --user-name {user} "
        f"--access-key-id {foreign[0] if foreign else '...'}), or adopt it by putting it and its "
        "SMTP password into the secret as AWSCURRENT; then rotate again."
    )


# -- finishSecret --------------------------------------------------------------------------------


def retire(ctx: StepContext, *, new: SmtpSecret | None, old: SmtpSecret | None) -> None:
    """Apply ``OLD_KEY_ACTION`` to the key that was live before ``new`` became AWSCURRENT.

    With ``OLD_KEY_GRACE_PERIOD``, the key stays Active: its grace period starts now (a tag on
    the user) and the scheduled sweep (:mod:`rotation_handler.sweep`) applies the action once it
    has passed. AWSCURRENT's key and another user's key are never touched; a key already gone
    counts as retired.
    """
    if old is None or not old.access_key_id or new is None:
        return
    if old.access_key_id == new.access_key_id or old.iam_user_name != new.iam_user_name:
        return
    action = ctx.settings.old_key_action
    if action is OldKeyAction.KEEP:
        return
    grace = ctx.settings.old_key_grace_period
    user = gate.admit(ctx, old.iam_user_name, records=bool(grace))
    if user is not None and grace:
        interval = ctx.state.rotation_interval
        if interval is not None and grace >= interval:
            logger.warning(
                "OLD_KEY_GRACE_PERIOD is not shorter than the rotation interval: each rotation "
                "will retire the previous key before its grace period ends",
                extra={"grace_seconds": grace, "interval_seconds": interval},
            )
        start_grace(ctx.iam, user, ctx.state.arn, old.access_key_id, now=keys.now_utc())
        return
    apply_action(ctx.iam, old.iam_user_name, old.access_key_id, action)


def start_grace(
    iam: IAMClient, user: User, secret_arn: str, access_key_id: str, *, now: datetime
) -> None:
    """Record that ``secret_arn``'s old key stopped being live at ``now``, unless recorded.

    A finishSecret run again (its promotion's answer was lost) keeps the first record, so the
    period is never restarted. Only this record lets the sweep retire the key
    (:func:`rotation_handler.gate.may_retire`).
    """
    recorded = user.records.retirement
    if recorded is not None and recorded.is_for(secret_arn, access_key_id):
        return
    keys.write_tags(iam, user.name, records.retiring(secret_arn, access_key_id, since=now))
    logger.info("old key stays Active for its grace period", extra={"access_key_id": access_key_id})


def apply_action(iam: IAMClient, user: str, access_key_id: str, action: OldKeyAction) -> bool:
    """Deactivate or delete an old key; return whether it changed (a key gone counts as done)."""
    if action is OldKeyAction.KEEP:
        return False
    if action is OldKeyAction.DELETE:
        keys.delete(iam, user, access_key_id)
    elif not keys.set_status(iam, user, access_key_id, active=False):
        return False
    metrics.add_metric(name="AccessKeysRetired", unit=MetricUnit.Count, value=1)
    logger.info("retired old key", extra={"access_key_id": access_key_id, "action": str(action)})
    return True


def due_at(secret: SecretState, user: User, access_key_id: str, *, grace: int) -> datetime | None:
    """When the sweep may retire ``access_key_id``: its grace period's end.

    ``None`` when this secret's finishSecret recorded no retirement of that key on the user: the
    sweep then leaves it alone (the next rotation retires it).
    """
    recorded = user.records.retirement
    if recorded is None or not gate.may_retire(secret, user, access_key_id):
        return None
    return recorded.since + timedelta(seconds=grace)


def delete_user_keys(iam: IAMClient, user: User) -> list[str]:
    """Delete every access key of ``user`` and the function's records on it; return the ids.

    Only for a user whose stack CloudFormation shows being torn down
    (:func:`rotation_handler.gate.check_teardown`). The binding and the user's other tags stay:
    they go with the user.
    """
    found = keys.list_keys(iam, user.name)
    for key in found:
        keys.delete(iam, user.name, key.access_key_id)
    ours = [tag for tag in FUNCTION_TAGS if tag in user.tags]
    if ours:
        try:
            iam.untag_user(UserName=user.name, TagKeys=ours)
        except ClientError as err:  # the keys are gone: the user can still be deleted
            logger.warning(
                "could not remove the rotation's tags from the user",
                extra={"user": user.name, "error": error_code(err)},
            )
    deleted = [key.access_key_id for key in found]
    logger.info(
        "deleted the app's access keys", extra={"user": user.name, "access_key_ids": deleted}
    )
    return deleted
