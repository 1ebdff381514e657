"""createSecret's work: the new version's value, a key made once, and storing it.

Which keys may make room is :mod:`rotation_handler.lifecycle`'s; this module composes the new
version from the labelled ones and the function's settings, records its intent on the user,
creates the key (never retried blindly: botocore may repeat it only after an answer proving
nothing was made), and stores it as AWSPENDING.

Nothing is concluded from an SDK error alone: a call that failed may still have taken effect
(its answer was lost), so after a failed CreateAccessKey the keys are listed and compared, and
after a failed PutSecretValue the new key is kept unless the stored version can be read back.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
)

from rotation_handler import gate, keys, records, versions
from rotation_handler.context import LabelledVersions
from rotation_handler.exceptions import AccessKeyError, SecretValueError, StagingError, error_code
from rotation_handler.observability import logger, metrics
from rotation_handler.state import CURRENT, PENDING, PREVIOUS
from ses_smtp_rotator.endpoints import smtp_host
from ses_smtp_rotator.exceptions import InvalidSecretError
from ses_smtp_rotator.secret import CREDENTIAL_KEYS, parse_secret

if TYPE_CHECKING:
    from rotation_handler.context import StepContext
    from rotation_handler.records import AccessKey, User
    from ses_smtp_rotator.secret import SmtpSecret


def read_current(ctx: StepContext) -> SmtpSecret:
    """Return AWSCURRENT's value, which the new version starts from.

    Raises
    ------
    SecretValueError
        AWSCURRENT has no value or does not follow the schema.
    """
    current = ctx.versions.read(CURRENT)
    if current is None:
        msg = f"secret {ctx.state.arn} has no AWSCURRENT value: put the bootstrap value first"
        raise SecretValueError(msg)
    return current


def labelled(
    ctx: StepContext, current: SmtpSecret, found: list[AccessKey], user: User
) -> LabelledVersions:
    """Return AWSCURRENT with AWSPREVIOUS, read only when it may say something new.

    Not read when every other key of the user is the one the user's record shows live before
    the rotation that is now AWSCURRENT began (that is AWSPREVIOUS's key, an old key of ours).
    """
    intent = user.records.intent
    arn, now_current = ctx.state.arn, ctx.state.version_with(CURRENT)
    others = [
        key.access_key_id
        for key in found
        if key.access_key_id != current.access_key_id
        and not (
            intent
            and intent.held_live(key.access_key_id, current_version=now_current, secret_arn=arn)
        )
    ]
    previous = None
    # A damaged old version cannot vouch for any key; its key counts as unreferenced.
    if (others or not current.has_credentials) and ctx.state.version_with(PREVIOUS) != ctx.token:
        previous = ctx.versions.read_labelled(PREVIOUS)
    return LabelledVersions(current=current, previous=previous)


def compose(ctx: StepContext, seen: LabelledVersions) -> SmtpSecret:
    """Return the value the new version starts from, before its credentials (no call).

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


def create_and_store(
    ctx: StepContext, user: User, *, base: SmtpSecret, existing: list[str], live: str | None
) -> str:
    """Record the intent, create the key, store it as AWSPENDING; return the new key's id.

    Raises
    ------
    AccessKeyError
        IAM refused the new key (the limit reached meanwhile, the user gone).
    StagingError
        The pending version was given another value meanwhile (the new key is deleted).
    """
    opened = records.opened(
        secret_arn=ctx.state.arn,
        token=ctx.token,
        existing=existing,
        now=keys.now_utc(),
        seconds_left=ctx.seconds_left(),
        live=live,
    )
    keys.write_tags(ctx.iam, user.name, opened | gate.claim(ctx.settings, ctx.state, user))
    key_id, secret_key = _create(ctx, user.name, existing=existing)
    pending = base.with_access_key(
        key_id, secret_key, store_secret_access_key=ctx.settings.store_secret_access_key
    )
    if not _store(ctx, user.name, key_id, pending):
        msg = (
            f"the AWSPENDING version {ctx.token} was given another value meanwhile: the new key "
            f"{key_id} was deleted, and the next attempt takes that value as it is"
        )
        raise StagingError(msg)
    metrics.add_metric(name="AccessKeysCreated", unit=MetricUnit.Count, value=1)
    logger.info("created pending key", extra={"access_key_id": key_id})
    return key_id


def _create(ctx: StepContext, user: str, *, existing: list[str]) -> tuple[str, str]:
    """Create the key; if the call fails, find out whether it made one before deciding."""
    try:
        return keys.create(ctx.iam, user)
    except ClientError as err:
        if keys.answered_without_effect(err):
            # The answer to the only attempt that could take effect: IAM made no key.
            _close_intent(ctx, user)
        else:
            _after_failed_create(ctx, user, existing=existing, sent=True)
        if error_code(err) == "LimitExceeded":
            msg = (
                f"IAM user {user} reached the limit of {keys.MAX_KEYS} access keys meanwhile: "
                "Secrets Manager will retry; if it fails again, the key in the way is named"
            )
            raise AccessKeyError(msg) from err
        raise
    except BotoCoreError as err:
        # Could not connect: the request never left (botocore raises these before sending).
        sent = not isinstance(err, (EndpointConnectionError, ConnectTimeoutError))
        _after_failed_create(ctx, user, existing=existing, sent=sent)
        raise


def _after_failed_create(ctx: StepContext, user: str, *, existing: list[str], sent: bool) -> None:
    """List and compare: delete the one key the failed call made (its secret was never seen).

    A key that appeared since the attempt listed the keys was made by its call: it is deleted and
    the intent closed. When none appeared and the request was ``sent``, it may still take effect
    (IAM is eventually consistent; a timed-out request may be in flight), so the intent stays
    open and vouches for a key that appears later: the next attempt deletes it. A request that
    never left closes the intent, so a key made by hand before the retry is foreign. When the list
    cannot be read, or more than one key appeared (one may be made by hand), nothing is deleted.
    """
    try:
        appeared = [
            k.access_key_id
            for k in keys.list_keys(ctx.iam, user)
            if k.access_key_id not in existing
        ]
        if not appeared and not sent:
            _close_intent(ctx, user)
            return
        if len(appeared) != 1:
            logger.warning(
                "CreateAccessKey failed and the keys do not show its outcome; the record of the "
                "attempt stays open for the next one",
                extra={"keys_appeared": len(appeared)},
            )
            return
        keys.delete(ctx.iam, user, appeared[0])
        logger.warning(
            "CreateAccessKey failed after making a key; deleted it",
            extra={"access_key_id": appeared[0]},
        )
        _close_intent(ctx, user)
    except (ClientError, BotoCoreError, AccessKeyError):
        logger.warning("could not tell whether CreateAccessKey made a key; the next attempt will")


def _close_intent(ctx: StepContext, user: str) -> None:
    """Record that the attempt left no key behind (best effort: an open intent is safe)."""
    with contextlib.suppress(ClientError, BotoCoreError):
        keys.write_tags(ctx.iam, user, records.closed())


def _store(ctx: StepContext, user: str, key_id: str, pending: SmtpSecret) -> bool:
    """Put the pending version; return ``False`` when another value holds it already.

    No error proves the put took no effect: its first attempt may have been stored and every
    retry throttled (the last error a 4xx). So after any failure the version is read back:
    holding the new key, the put happened; holding another value (put by someone else), this put
    never can (a version's value never changes), and the new key goes; holding nothing, the key
    and the open intent stay, and the next attempt, which sees what was stored, decides.
    """
    try:
        versions.put_pending(
            ctx.sm,
            ctx.state.arn,
            token=ctx.token,
            secret=pending,
            rotation_token=ctx.rotation_token,
        )
    except (ClientError, BotoCoreError):
        stored = _stored_key(ctx)
        if stored == key_id:
            logger.warning("PutSecretValue failed, but the pending version is stored")
            return True
        if stored is None:
            logger.warning(
                "PutSecretValue failed and nothing is stored yet; the new key stays for the "
                "next attempt to sort out",
                extra={"access_key_id": key_id},
            )
            raise
        keys.delete(ctx.iam, user, key_id)
        _close_intent(ctx, user)
        return False
    return True


def _stored_key(ctx: StepContext) -> str | None:
    """Return the key the token's version holds (``""`` for another value without one).

    ``None`` when it holds nothing, or cannot be read.
    """
    try:
        stored = ctx.versions.read(PENDING, version_id=ctx.token)
    except SecretValueError:
        return ""
    except (ClientError, BotoCoreError):
        return None
    return None if stored is None else (stored.access_key_id or "")
