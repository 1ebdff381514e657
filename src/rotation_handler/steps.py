"""The four rotation steps. Each one first asks "is this already done?", then does it.

A step raises when it cannot complete; Secrets Manager records the failure and later retries the
whole rotation with the same token, from createSecret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from aws_lambda_powertools.metrics import MetricUnit

from rotation_handler import gate, keys, lifecycle, smtp_check, versions
from rotation_handler.exceptions import AccessKeyError, SmtpTestError, StagingError
from rotation_handler.guard import Verdict
from rotation_handler.observability import logger, metrics
from rotation_handler.state import CURRENT, PENDING, PREVIOUS, SecretState

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_iam import IAMClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from rotation_handler.settings import Settings
    from ses_smtp_rotator.secret import SmtpSecret


@dataclass(frozen=True, kw_only=True)
class StepContext:
    """Everything a step needs: clients, settings, the guard's view of the secret, a deadline."""

    sm: SecretsManagerClient
    iam: IAMClient
    settings: Settings
    state: SecretState
    token: str
    verdict: Verdict
    seconds_left: Callable[[], float]
    # The users this invocation read through the gate (one GetUser each).
    users: dict[str, gate.User] = field(default_factory=dict)
    # The event's RotationToken: PutSecretValue carries it (never logged, never in a repr).
    rotation_token: str | None = field(default=None, repr=False)

    def read(self, stage: str, *, version_id: str | None = None) -> SmtpSecret | None:
        """Read a version of the secret (``None`` when it has no value yet)."""
        return versions.read(
            self.sm,
            self.state.arn,
            stage=stage,
            version_id=version_id,
            known_version=self.state.version_with(stage),
            default_region=self.settings.region,
        )

    def read_labelled(self, stage: str) -> SmtpSecret | None:
        """Read a version whose damage must not stop the step (it only names a key)."""
        return versions.read_labelled(
            self.sm, self.state, stage, default_region=self.settings.region
        )

    def read_pending(self) -> SmtpSecret:
        """Read the token's AWSPENDING version, which createSecret must have filled.

        Only ``SMTP_IAM_USER_NAME`` is checked here (no call): a step asks the gate about the
        user before it writes anything to it (:meth:`admit`).
        """
        pending = self.read(PENDING, version_id=self.token)
        if pending is None or not pending.has_credentials:
            msg = f"the AWSPENDING version {self.token} has no credentials: run createSecret first"
            raise StagingError(msg)
        gate.check_user_name(self.settings, self.state, pending.iam_user_name)
        return pending

    def admit_read(self, name: str) -> gate.User:
        """Ask the gate about user ``name`` and return it as read (its records included)."""
        user = self.admit(name, records=True)
        if user is None:  # pragma: no cover - records=True always reads the user
            raise AssertionError(name)
        return user

    def admit(self, name: str, *, records: bool = False) -> gate.User | None:
        """Ask the gate whether this secret may act on user ``name`` (once per invocation).

        Returns the user when it was read (``records=True`` always reads it).

        Raises
        ------
        NotBoundError
            The gate refuses (see :func:`rotation_handler.gate.admit_user`).
        """
        if name in self.users:
            return self.users[name]
        user = gate.admit_user(self.iam, self.settings, self.state, name, records=records)
        if user is not None:
            self.users[name] = user
        return user


def create_secret(ctx: StepContext) -> None:
    """Create a new access key and store it with its SMTP passwords as the AWSPENDING version.

    Guarantees: afterwards the token's version holds a key created for it; at most two keys
    exist; the live key (AWSCURRENT's) and keys of no record of ours are untouched; orphans of
    earlier attempts are gone; the user belongs to this secret. The key lifecycle, and the
    errors it raises (a bad AWSCURRENT value, a user another secret owns, a foreign key holding
    the limit, IAM refusing the key), are :func:`rotation_handler.lifecycle.create_pending`'s.
    """
    # A rotation starts from what the service holds, not from what this container remembers.
    versions.forget(ctx.state.arn)
    if ctx.verdict is Verdict.ALREADY_CURRENT or ctx.read(PENDING, version_id=ctx.token):
        logger.info("pending version already has a value; nothing to create")
        return
    lifecycle.create_pending(ctx)


def set_secret(ctx: StepContext) -> None:
    """Make sure the pending key exists and is Active (IAM needs nothing else set).

    Raises
    ------
    AccessKeyError
        The pending key no longer exists; the rotation must be cancelled and started again.
    """
    if ctx.verdict is Verdict.ALREADY_CURRENT:
        return
    pending = ctx.read_pending()
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
        ctx.admit(pending.iam_user_name)
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
    pending = ctx.read_pending()
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
        new, old = ctx.read(CURRENT), ctx.read_labelled(PREVIOUS)
    else:
        new, old = ctx.read_pending(), ctx.read_labelled(CURRENT)
        if old is not None and not old.has_credentials:
            old = ctx.read_labelled(PREVIOUS)
        # The gate before the promotion: the new key must be one this secret may hold.
        ctx.admit(new.iam_user_name)
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
