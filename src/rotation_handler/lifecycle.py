"""The access key lifecycle of a rotation, in one place.

createSecret reads the state from the services (versions, the user's keys and records), classifies
every key, frees a slot under IAM's two-key limit, records its intent, creates the key and stores
it; finishSecret retires the key that stopped being live. Which key may go:

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

Nothing is concluded from an SDK error alone: a call that failed may still have taken effect
(its answer was lost), so after a failed CreateAccessKey the keys are listed and compared, and
after a failed PutSecretValue the new key is kept unless the stored version can be read back.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from rotation_handler import gate, intents, keys, versions
from rotation_handler.exceptions import AccessKeyError, ForeignKeyError, SecretValueError
from rotation_handler.observability import logger, metrics
from rotation_handler.settings import OldKeyAction
from rotation_handler.state import CURRENT, PENDING, PREVIOUS
from ses_smtp_rotator.endpoints import smtp_host
from ses_smtp_rotator.exceptions import InvalidSecretError
from ses_smtp_rotator.secret import CREDENTIAL_KEYS, parse_secret

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    from mypy_boto3_iam import IAMClient

    from rotation_handler.keys import AccessKey
    from rotation_handler.steps import StepContext
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


@dataclass(frozen=True, kw_only=True)
class Versions:
    """The labelled versions createSecret reads: AWSCURRENT, AWSPREVIOUS and the live one."""

    current: SmtpSecret
    previous: SmtpSecret | None

    @property
    def live(self) -> SmtpSecret | None:
        """The version readers use: AWSCURRENT, or AWSPREVIOUS while AWSCURRENT is a bootstrap."""
        if self.current.has_credentials:
            return self.current
        previous = self.previous
        same_user = previous is not None and previous.iam_user_name == self.current.iam_user_name
        return previous if same_user and previous and previous.has_credentials else None

    def holder(self, access_key_id: str) -> str | None:
        """Return the stage of the labelled version that holds a key, if one does."""
        if access_key_id == self.current.access_key_id:
            return CURRENT
        if self.previous is not None and access_key_id == self.previous.access_key_id:
            return PREVIOUS
        return None


# -- createSecret --------------------------------------------------------------------------------


def create_pending(ctx: StepContext) -> None:
    """Create a new key and store it, with its passwords, as the token's AWSPENDING version.

    Raises
    ------
    SecretValueError
        AWSCURRENT has no value or does not follow the schema.
    NotBoundError
        The gate refuses the user (another secret's, no secret's, outside the fleet).
    ForeignKeyError
        IAM's two-key limit is held by keys this function must not delete.
    AccessKeyError
        The IAM user does not exist, or IAM refused the new key.
    """
    current = _read_current(ctx)
    admitted = ctx.admit_read(current.iam_user_name)
    user, records = admitted.name, admitted.records
    found = keys.list_keys(ctx.iam, user)
    # AWSPREVIOUS matters when it may hold the live key or one of the user's other keys.
    others = any(key.access_key_id != current.access_key_id for key in found)
    seen = Versions(
        current=current,
        previous=_read_previous(ctx) if others or not current.has_credentials else None,
    )
    base = _base(ctx, seen)
    ctx.admit_read(base.iam_user_name)
    left = make_room(ctx, user, classify(ctx, found, seen=seen, records=records))
    existing = [key.access_key_id for key in left]
    keys.write_tags(
        ctx.iam,
        user,
        intents.opened(
            secret_arn=ctx.state.arn,
            token=ctx.token,
            existing=existing,
            now=keys.now_utc(),
            seconds_left=ctx.seconds_left(),
        )
        | gate.claim(ctx.settings, ctx.state, admitted),
    )
    key_id, secret_key = _create(ctx, user, existing=existing)
    pending = base.with_access_key(
        key_id, secret_key, store_secret_access_key=ctx.settings.store_secret_access_key
    )
    _store(ctx, user, key_id, pending)
    metrics.add_metric(name="AccessKeysCreated", unit=MetricUnit.Count, value=1)
    logger.info("created pending key", extra={"access_key_id": key_id})


def _read_current(ctx: StepContext) -> SmtpSecret:
    current = ctx.read(CURRENT)
    if current is None:
        msg = f"secret {ctx.state.arn} has no AWSCURRENT value: put the bootstrap value first"
        raise SecretValueError(msg)
    return current


def _read_previous(ctx: StepContext) -> SmtpSecret | None:
    # A damaged old version cannot vouch for any key; its key counts as unreferenced.
    if ctx.state.version_with(PREVIOUS) == ctx.token:
        return None
    return ctx.read_labelled(PREVIOUS)


def _base(ctx: StepContext, seen: Versions) -> SmtpSecret:
    """Return the value the new version starts from, before its credentials.

    Normally AWSCURRENT's. When a bootstrap value was written over AWSCURRENT (a stack update of
    an older template, or by hand), the live version's unknown fields and extra regions are kept
    and the bootstrap's own fields win. The function's SES_REGION, SMTP_HOST and SMTP_PORT, when
    set, win over both; EXTRA_SES_REGIONS adds regions to the ``passwords`` map.
    """
    arn = ctx.state.arn
    value = versions.raw(arn, ctx.state.version_with(CURRENT))
    live = seen.live
    if live is not None and live is not seen.current:
        kept = versions.raw(arn, ctx.state.version_with(PREVIOUS))
        kept = {k: v for k, v in kept.items() if k not in CREDENTIAL_KEYS}
        if live.passwords:
            kept["passwords"] = dict.fromkeys(live.passwords)
        value = kept | value
        logger.warning("AWSCURRENT holds no credentials; the live key stays until a new one is")
    settings = ctx.settings
    if settings.ses_region and settings.ses_region != value.get("region"):
        if value.get("host") == smtp_host(str(value.get("region") or settings.region)):
            del value["host"]  # the default host of the old region follows the new region
        value["region"] = settings.ses_region
    if settings.smtp_host:
        value["host"] = settings.smtp_host
    if settings.smtp_port:
        value["port"] = settings.smtp_port
    if settings.extra_ses_regions:
        value["passwords"] = _passwords_for(value.get("passwords"), settings.extra_ses_regions)
    try:
        base = parse_secret(json.dumps(value), default_region=settings.region, secret_id=arn)
    except InvalidSecretError as err:
        msg = f"the new version of secret {arn} would be unusable: {err}"
        raise SecretValueError(msg) from None
    versions.check_region(base, f"new version of secret {arn}")
    return base


def _passwords_for(listed: object, extra: tuple[str, ...]) -> dict[str, None]:
    """Return the regions of the new ``passwords`` map: those already listed, then ``extra``.

    The values are filled in by :meth:`SmtpSecret.with_access_key`, which derives each region's
    password from the new key. A region dropped from EXTRA_SES_REGIONS stays until it is taken
    out of the secret by hand: a reader may still use it.
    """
    return dict.fromkeys([*(listed if isinstance(listed, dict) else {}), *extra])


def classify(
    ctx: StepContext,
    existing: Iterable[AccessKey],
    *,
    seen: Versions,
    records: intents.UserRecords,
) -> list[ClassifiedKey]:
    """Return every key of the user with its class (without searching unlabelled versions)."""
    existing = list(existing)
    live = seen.live
    protected = {seen.current.access_key_id, live.access_key_id if live else None} - {None}
    unreferenced = [
        k for k in existing if k.access_key_id not in protected and not seen.holder(k.access_key_id)
    ]
    orphan = None
    if records.intent is not None and unreferenced:
        orphan = records.intent.orphan(
            existing, token=ctx.token, staged=ctx.state.staged(), secret_arn=ctx.state.arn
        )
    out = []
    for key in existing:
        stage = seen.holder(key.access_key_id)
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


def _create(ctx: StepContext, user: str, *, existing: list[str]) -> tuple[str, str]:
    """Create the key; if the call fails, find out whether it made one before deciding."""
    try:
        return keys.create(ctx.iam, user)
    except ClientError as err:
        if keys.answered_without_effect(err):
            # The answer to the only attempt that could take effect: IAM made no key.
            _close_intent(ctx, user)
        else:
            _after_failed_create(ctx, user, existing=existing)
        if keys.error_code(err) == "LimitExceeded":
            msg = (
                f"IAM user {user} reached the limit of {keys.MAX_KEYS} access keys meanwhile: "
                "Secrets Manager will retry; if it fails again, the key in the way is named"
            )
            raise AccessKeyError(msg) from err
        raise
    except BotoCoreError:
        _after_failed_create(ctx, user, existing=existing)
        raise


def _after_failed_create(ctx: StepContext, user: str, *, existing: list[str]) -> None:
    """List and compare: delete the one key the failed call made (its secret was never seen).

    A key that appeared since the attempt listed the keys was made by its call. When the list
    cannot be read, or more than one key appeared (one may be made by hand), nothing is deleted
    and the intent stays open: the next attempt, which can see the outcome, decides.
    """
    try:
        appeared = [
            k.access_key_id
            for k in keys.list_keys(ctx.iam, user)
            if k.access_key_id not in existing
        ]
        if len(appeared) > 1:
            logger.warning("several keys appeared during CreateAccessKey; none is deleted")
            return
        for key_id in appeared:
            keys.delete(ctx.iam, user, key_id)
            logger.warning(
                "CreateAccessKey failed after making a key; deleted it",
                extra={"access_key_id": key_id},
            )
        _close_intent(ctx, user)
    except (ClientError, BotoCoreError, AccessKeyError):
        logger.warning("could not tell whether CreateAccessKey made a key; the next attempt will")


def _close_intent(ctx: StepContext, user: str) -> None:
    """Record that the attempt left no key behind (best effort: an open intent is safe)."""
    with contextlib.suppress(ClientError, BotoCoreError):
        keys.write_tags(ctx.iam, user, intents.closed())


def _store(ctx: StepContext, user: str, key_id: str, pending: SmtpSecret) -> None:
    """Put the pending version; after a failure, delete the key only if nothing was stored.

    An error answer (4xx) proves the put took no effect: the key goes and the intent closes.
    Without such proof (a lost answer, a 5xx) the put may have happened, or may still happen:
    the key stays unless the version is read back holding it, and the intent stays open, so the
    next attempt, which sees what was stored, keeps the key (stored) or deletes it (an orphan).
    """
    try:
        versions.put_pending(
            ctx.sm,
            ctx.state.arn,
            token=ctx.token,
            secret=pending,
            rotation_token=ctx.rotation_token,
        )
    except ClientError as err:
        if keys.answered_without_effect(err):
            with contextlib.suppress(ClientError, BotoCoreError):
                keys.delete(ctx.iam, user, key_id)
                _close_intent(ctx, user)
            raise
        if not _read_back(ctx, key_id):
            raise
    except BotoCoreError:
        if not _read_back(ctx, key_id):
            raise


def _read_back(ctx: StepContext, key_id: str) -> bool:
    """Whether the token's version holds the key after all (a failed put that was stored)."""
    if _stored_key(ctx) == key_id:
        logger.warning("PutSecretValue failed, but the pending version is stored")
        return True
    logger.warning(
        "PutSecretValue failed without proof that nothing was stored; the new key stays for "
        "the next attempt to sort out",
        extra={"access_key_id": key_id},
    )
    return False


def _stored_key(ctx: StepContext) -> str | None:
    """Return the key the token's version holds, if it can be read (``None`` otherwise)."""
    try:
        stored = ctx.read(PENDING, version_id=ctx.token)
    except (ClientError, BotoCoreError, SecretValueError):
        return None
    return None if stored is None else stored.access_key_id


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
    user = ctx.admit(old.iam_user_name, records=bool(grace))
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
    iam: IAMClient, user: gate.User, secret_arn: str, access_key_id: str, *, now: datetime
) -> None:
    """Record that ``secret_arn``'s old key stopped being live at ``now``, unless recorded.

    A finishSecret run again (its promotion's answer was lost) keeps the first record, so the
    period is never restarted. Only this record lets the sweep retire the key
    (:func:`rotation_handler.gate.may_retire`).
    """
    recorded = user.records.retirement
    if recorded is not None and recorded.is_for(secret_arn, access_key_id):
        return
    keys.write_tags(iam, user.name, intents.retiring(secret_arn, access_key_id, since=now))
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
