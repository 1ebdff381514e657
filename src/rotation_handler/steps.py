"""The four rotation steps. Each one first asks "is this already done?", then does it.

A step raises when it cannot complete; Secrets Manager records the failure and later retries the
whole rotation with the same token, from createSecret.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from aws_lambda_powertools.metrics import MetricUnit

from rotation_handler import creation, gate, hidden_user, keys, lifecycle, smtp_check, versions
from rotation_handler.exceptions import AccessKeyError, HiddenUserError, SmtpTestError
from rotation_handler.observability import logger, metrics
from rotation_handler.state import CURRENT, PENDING, PREVIOUS, Verdict

if TYPE_CHECKING:
    from collections.abc import Callable

    from rotation_handler.context import StepContext
    from ses_smtp_rotator.secret import SmtpSecret


def _pending(ctx: StepContext) -> SmtpSecret:
    """Read the token's AWSPENDING version; check its user's name (no call)."""
    pending = ctx.versions.read_pending(ctx.token)
    gate.check_user_name(ctx.settings, ctx.state, pending.iam_user_name)
    return pending


def create_secret(ctx: StepContext) -> None:
    """Create a new access key and store it with its SMTP passwords as the AWSPENDING version.

    Guarantees: afterwards the token's version holds a key created for it; at most two keys
    exist; the live key (AWSCURRENT's) and keys of no record of ours are untouched; orphans of
    earlier attempts are gone; the gate admitted the user for this secret first.

    Raises
    ------
    SecretValueError
        AWSCURRENT has no value or does not follow the schema.
    NotBoundError
        The gate refuses the user (bound to another secret or to none, outside the fleet).
    ForeignKeyError
        IAM's two-key limit is held by keys this function must not delete.
    AccessKeyError
        The IAM user does not exist, or IAM refused the new key.
    """
    # A rotation starts from what the service holds, not from what this container remembers.
    versions.forget(ctx.state.arn)
    if ctx.verdict is Verdict.ALREADY_CURRENT or ctx.versions.read(PENDING, version_id=ctx.token):
        logger.info("pending version already has a value; nothing to create")
        return
    current = creation.read_current(ctx)
    try:
        user = gate.admit_read(ctx, current.iam_user_name)
    except HiddenUserError as err:  # deleted by hand, or mistyped: the versions tell which
        raise hidden_user.explain(ctx, current) from err
    found = keys.list_keys(ctx.iam, user.name)
    seen = creation.labelled(ctx, current, found, user)
    base = creation.compose(ctx, seen)
    gate.admit_read(ctx, base.iam_user_name)
    classified = lifecycle.classify(ctx, found, seen=seen, records=user.records)
    left = lifecycle.make_room(ctx, user.name, classified)
    live = seen.live.access_key_id if seen.live else None
    existing = [key.access_key_id for key in left]
    creation.create_and_store(ctx, user, base=base, existing=existing, live=live)


def set_secret(ctx: StepContext) -> None:
    """Make sure the pending key exists and is Active (IAM needs nothing else set).

    Raises
    ------
    AccessKeyError
        The pending key no longer exists; the rotation must be cancelled and started again.
    """
    if ctx.verdict is Verdict.ALREADY_CURRENT:
        return
    pending = _pending(ctx)
    key_id = str(pending.access_key_id)
    found = next(
        (k for k in keys.list_keys(ctx.iam, pending.iam_user_name) if k.access_key_id == key_id),
        None,
    )
    if found is None:
        msg = (
            f"the pending access key {key_id} of IAM user {pending.iam_user_name} no longer "
            "exists: cancel this rotation (aws secretsmanager cancel-rotate-secret) and rotate "
            "again"
        )
        raise AccessKeyError(msg)
    if not found.active:
        gate.admit(ctx, pending.iam_user_name)
        keys.set_status(ctx.iam, pending.iam_user_name, key_id, active=True)
        logger.warning("pending key was inactive; activated it", extra={"access_key_id": key_id})


def test_secret(ctx: StepContext) -> None:
    """Log in to the secret's SMTP endpoint with the pending credentials.

    Authentication failures (535, 454) are retried with back-off within
    ``SMTP_TEST_TIMEOUT_SECONDS`` (and the Lambda's remaining time), because a new IAM key takes
    seconds to reach SES. Anything else fails at once.

    Raises
    ------
    SmtpTestError
        The login failed for another reason, or was still rejected when the budget ran out.
    """
    if ctx.verdict is Verdict.ALREADY_CURRENT:
        return
    pending = _pending(ctx)
    outcome = smtp_check.log_in(
        pending,
        budget=min(ctx.settings.smtp_test_timeout, ctx.seconds_left()),
        attempt_timeout=ctx.settings.smtp_attempt_timeout,
    )
    metrics.add_metric(name="SmtpAuthAttempts", unit=MetricUnit.Count, value=outcome.attempts)
    metrics.add_metric(name="SmtpTestDuration", unit=MetricUnit.Seconds, value=outcome.elapsed)
    logger.info(
        "smtp test", extra={"outcome": str(outcome.result.outcome), "attempts": outcome.attempts}
    )
    if not outcome.result.ok:
        raise SmtpTestError(outcome.failure())
    if ctx.settings.smtp_test_sender:
        smtp_check.send_message(
            pending,
            sender=ctx.settings.smtp_test_sender,
            recipient=ctx.settings.smtp_test_recipient,
            secret_name=ctx.state.name,
            timeout=max(1.0, min(ctx.settings.smtp_attempt_timeout, ctx.seconds_left())),
        )
        metrics.add_metric(name="SmtpTestMessagesSent", unit=MetricUnit.Count, value=1)


def finish_secret(ctx: StepContext) -> None:
    """Make the pending version AWSCURRENT, then apply ``OLD_KEY_ACTION`` to the old live key.

    The old live key is AWSCURRENT's, or AWSPREVIOUS's while AWSCURRENT held a bootstrap value.
    Run again after success, it re-applies the policy to AWSPREVIOUS's key, which changes
    nothing unless an earlier run stopped between the two halves.
    """
    if ctx.verdict is Verdict.ALREADY_CURRENT:
        new, old = ctx.versions.read(CURRENT), ctx.versions.read_labelled(PREVIOUS)
    else:
        new, old = _pending(ctx), ctx.versions.read_labelled(CURRENT)
        if old is not None and not old.has_credentials:
            old = ctx.versions.read_labelled(PREVIOUS)
        # The gate before the promotion: the new key must be one this secret may hold.
        gate.admit(ctx, new.iam_user_name)
        versions.promote(
            ctx.sm, ctx.state.arn, token=ctx.token, current_version=ctx.state.version_with(CURRENT)
        )
        logger.info("promoted pending version to AWSCURRENT")
    lifecycle.retire(ctx, new=new, old=old)


STEPS: Final[dict[str, Callable[[StepContext], None]]] = {
    "createSecret": create_secret,
    "setSecret": set_secret,
    "testSecret": test_secret,
    "finishSecret": finish_secret,
}
