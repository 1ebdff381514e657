"""The scheduled sweep: retire the old key once its grace period has passed.

With ``OLD_KEY_GRACE_PERIOD``, finishSecret promotes the new version and leaves the old key Active,
recording on the IAM user when its grace period started. A schedule invokes the function with
``{"Action": "RetireOldKeys", "SecretId": "<secret ARN>"}``; each run reads the state from the
services (the labels, the user's keys and records) and acts only on AWSPREVIOUS's key, on a user
the gate binds to this secret, once this secret's finishSecret recorded the key as retiring and
the period since has passed. It never touches AWSCURRENT's key (nor AWSPREVIOUS's while a
bootstrap value written over AWSCURRENT makes it the live one), a key no version holds, or a key
without that record: those are left alone with a warning.

Every run is safe to repeat and to die at any call: deactivating and deleting are idempotent,
and the next run finds the same state or a later one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Final

from aws_lambda_powertools.metrics import MetricUnit

from rotation_handler import gate, keys, lifecycle, versions
from rotation_handler.exceptions import BadEventError
from rotation_handler.observability import logger, metrics
from rotation_handler.settings import OldKeyAction
from rotation_handler.state import CURRENT, PREVIOUS

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from mypy_boto3_iam import IAMClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from rotation_handler.records import User
    from rotation_handler.settings import Settings
    from rotation_handler.state import SecretState

ACTION: Final = "RetireOldKeys"
# The keys every sweep's log lines carry once it has read the secret: the overdue view's fields.
LOGGED_AGE_KEYS: Final = ("app", "hours_since_rotation")


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What one sweep did (the Lambda's return value, without any secret)."""

    secret_arn: str
    result: str
    access_key_id: str | None = None
    retire_after: datetime | None = None

    def summary(self) -> dict[str, str]:
        """Return the outcome as the invocation's JSON answer."""
        out = {"Action": ACTION, "SecretId": self.secret_arn, "Result": self.result}
        if self.access_key_id:
            out["AccessKeyId"] = self.access_key_id
        if self.retire_after:
            out["RetireAfter"] = self.retire_after.isoformat()
        return out


def secret_id_of(event: Mapping[str, object]) -> str:
    """Return the SecretId of a sweep event.

    Raises
    ------
    BadEventError
        The event's Action is not :data:`ACTION`, or it has no SecretId string.
    """
    if event.get("Action") != ACTION:
        msg = f"unknown Action {str(event.get('Action'))[:40]!r}: expected {ACTION}"
        raise BadEventError(msg)
    secret_id = event.get("SecretId")
    if not isinstance(secret_id, str) or not secret_id:
        msg = f'the {ACTION} event needs a SecretId: {{"Action": "{ACTION}", "SecretId": "<ARN>"}}'
        raise BadEventError(msg)
    return secret_id


def retire_old_keys(
    *,
    sm: SecretsManagerClient,
    iam: IAMClient,
    settings: Settings,
    secret_id: str,
    now: datetime,
) -> Outcome:
    """Apply ``OLD_KEY_ACTION`` to AWSPREVIOUS's key if its grace period has passed.

    Raises
    ------
    NotBoundError
        The gate refuses the secret or its user (:mod:`rotation_handler.gate`).
    StagingError
        The secret does not exist.
    """
    state = gate.admit_secret(sm, secret_id, settings)
    versions.forget(state.arn)
    _report_rotation_age(state, now=now)
    current, previous = (
        versions.read_labelled(sm, state, stage, default_region=settings.region)
        for stage in (CURRENT, PREVIOUS)
    )
    if current is None or not current.has_credentials:
        return Outcome(secret_arn=state.arn, result="nothing-to-retire: AWSCURRENT holds no key")
    if previous is None or not previous.access_key_id:
        return Outcome(secret_arn=state.arn, result="nothing-to-retire")
    key_id, user = previous.access_key_id, previous.iam_user_name
    if key_id == current.access_key_id or user != current.iam_user_name:
        return Outcome(secret_arn=state.arn, result="nothing-to-retire")
    admitted = gate.admit_user(iam, settings, state, user, records=True)
    found = next((k for k in keys.list_keys(iam, user) if k.access_key_id == key_id), None)
    action = settings.old_key_action
    done = found is None or (action is OldKeyAction.DEACTIVATE and not found.active)
    if done or action is OldKeyAction.KEEP:
        result = "kept: OLD_KEY_ACTION=keep" if not done else "already-retired"
        return Outcome(secret_arn=state.arn, result=result, access_key_id=key_id)
    return _retire_when_due(iam, settings, state, admitted, key_id, now=now)


def _retire_when_due(  # noqa: PLR0913 - keyword-only facts of one sweep
    iam: IAMClient,
    settings: Settings,
    state: SecretState,
    user: User | None,
    key_id: str,
    *,
    now: datetime,
) -> Outcome:
    """Apply the action to ``key_id`` once this secret's recorded grace period has passed."""
    grace = settings.old_key_grace_period
    due = None if user is None else lifecycle.due_at(state, user, key_id, grace=grace)
    if user is None or due is None:
        logger.warning(
            "the old key has no retirement record of this secret's finishSecret: it is left "
            "alone (the next rotation retires it)",
            extra={"access_key_id": key_id},
        )
        return Outcome(secret_arn=state.arn, result="left-alone: no retirement record")
    if now < due:
        metrics.add_metric(name="OldKeysInGracePeriod", unit=MetricUnit.Count, value=1)
        return Outcome(
            secret_arn=state.arn, result="in-grace-period", access_key_id=key_id, retire_after=due
        )
    _report_late_use(iam, key_id, since=due - timedelta(seconds=grace))
    action = settings.old_key_action
    lifecycle.apply_action(iam, user.name, key_id, action)
    return Outcome(secret_arn=state.arn, result=f"retired: {action}", access_key_id=key_id)


def _report_rotation_age(state: SecretState, *, now: datetime) -> None:
    """Emit ``SecondsSinceLastRotation``, what the stack's overdue alarm watches.

    A secret that never rotated counts from its creation: the deploy rotates at once, so a secret
    still unrotated after the alarm's threshold is as overdue as one whose rotations stopped.
    """
    since = state.last_rotated or state.created
    if since is None:
        logger.warning("DescribeSecret gave neither LastRotatedDate nor CreatedDate")
        return
    age = max(0.0, (now - since).total_seconds())
    metrics.add_metric(name="SecondsSinceLastRotation", unit=MetricUnit.Seconds, value=age)
    # The same fact per app in the log lines (the metric has no per-app dimension, which would be
    # one paid metric per app): the fleet's overdue view queries these keys (LOGGED_AGE_KEYS).
    logger.append_keys(app=state.app, hours_since_rotation=round(age / 3600, 1))


def _report_late_use(iam: IAMClient, key_id: str, *, since: datetime) -> None:
    """Warn when the old key was used after the new one was promoted (a reader lags behind)."""
    last = iam.get_access_key_last_used(AccessKeyId=key_id).get("AccessKeyLastUsed", {})
    used = last.get("LastUsedDate")
    if used is not None and used >= since:
        metrics.add_metric(name="OldKeyUsedAfterPromotion", unit=MetricUnit.Count, value=1)
        logger.warning(
            "the old key was used after the new one was promoted: a consumer did not pick up "
            "the new password within the grace period",
            extra={
                "access_key_id": key_id,
                "last_used": used.isoformat(),
                "service": last.get("ServiceName"),
                "region": last.get("Region"),
            },
        )
