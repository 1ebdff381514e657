"""Lambda entry point: the Secrets Manager rotation function for SES SMTP credentials.

Settings and boto3 clients are built once per cold start (and again only if the environment
changes, which never happens in Lambda but does in test harnesses); each invocation then runs the
staging guard and dispatches to the step.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import SecretsManagerEvent, event_source
from botocore.config import Config

from rotation_handler import accounts, custom_resource, gate, guard, keys, steps, sweep
from rotation_handler.exceptions import BadEventError, UnknownStepError
from rotation_handler.observability import logger, metrics
from rotation_handler.settings import ENV_VARS, Settings
from ses_smtp_rotator.sdk_logging import quiet_sdk_loggers

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

# AWS calls retry with botocore's standard mode (throttling, 5xx, connection errors).
_BOTO_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=20
)
# Time kept back from the Lambda's remaining time for the calls after the SMTP test.
_RESERVE_SECONDS = 5.0
# Bound of one PUT of a custom resource's answer to CloudFormation.
_ANSWER_TIMEOUT = 10.0


@dataclass(frozen=True, kw_only=True)
class Runtime:
    """What a cold start builds: settings and the AWS clients."""

    settings: Settings
    sm: SecretsManagerClient
    iam: IAMClient
    fingerprint: tuple[str | None, ...]
    # The clients for a secret's account: the ones above, or a member account's assumed role.
    account_clients: accounts.AccountClients

    @functools.cached_property
    def cloudformation(self) -> gate.StackReader:
        """The CloudFormation client, built when the key clean-up first needs it."""
        client: gate.StackReader = self.account_clients.session.client(
            "cloudformation", config=_BOTO_CONFIG
        )
        return client

    def clients_for(self, secret_id: str, context: LambdaContext) -> accounts.Clients:
        """Return the clients that act on ``secret_id`` (see :mod:`rotation_handler.accounts`)."""
        return self.account_clients.for_secret(
            secret_id,
            function_arn=getattr(context, "invoked_function_arn", None),
            function_name=getattr(context, "function_name", None),
        )


_runtime: Runtime | None = None


def runtime(environ: Mapping[str, str] | None = None) -> Runtime:
    """Return the cold-start runtime, building it on first use or when the environment changed."""
    global _runtime  # noqa: PLW0603 - the per-container cache of a Lambda function
    env = os.environ if environ is None else environ
    fingerprint = tuple(env.get(name) for name in ENV_VARS)
    if _runtime is None or _runtime.fingerprint != fingerprint:
        settings = Settings.from_env(env)
        session = boto3.session.Session(region_name=settings.region)
        own = accounts.Clients(
            sm=session.client("secretsmanager", config=_BOTO_CONFIG),
            iam=session.client("iam", config=_BOTO_CONFIG),
        )
        _runtime = Runtime(
            settings=settings,
            sm=own.sm,
            iam=own.iam,
            fingerprint=fingerprint,
            account_clients=accounts.AccountClients(
                own=own,
                settings=settings,
                session=session,
                config=_BOTO_CONFIG,
            ),
        )
        metrics.namespace = settings.metrics_namespace
    return _runtime


@logger.inject_lambda_context(log_event=False, clear_state=True)
@metrics.log_metrics
@event_source(data_class=SecretsManagerEvent)
def _handle(event: SecretsManagerEvent, context: LambdaContext) -> None:
    quiet_sdk_loggers()  # again: loggers made or lowered since the import (see observability)
    try:
        step, secret_id, token = _parse(event)
        rt = runtime()
        aws = rt.clients_for(secret_id, context)
        state, verdict = guard.check(aws.sm, secret_id=secret_id, token=token, settings=rt.settings)
        if verdict is guard.Verdict.ALREADY_CURRENT:
            logger.info("version is already AWSCURRENT")
        step(
            steps.StepContext(
                sm=aws.sm,
                iam=aws.iam,
                settings=rt.settings,
                state=state,
                token=token,
                verdict=verdict,
                seconds_left=lambda: _seconds_left(context),
                rotation_token=_rotation_token(event),
            )
        )
    except Exception as err:
        metrics.add_metric(name="RotationStepFailed", unit=MetricUnit.Count, value=1)
        # One line that names the step, the token and why (step and version_id are appended keys
        # once the event parsed): what `ses-smtp-rotator rotate --wait` and people read.
        logger.error("step failed", extra={"error": first_line(err)})
        raise
    logger.info("step succeeded")
    metrics.add_metric(name="RotationStepSucceeded", unit=MetricUnit.Count, value=1)


def first_line(err: BaseException) -> str:
    """Return the first line of ``err``'s message, or its type's name when it has none.

    Examples
    --------
    >>> first_line(ValueError("  no key: rotate again  "))
    'no key: rotate again'
    >>> first_line(TimeoutError())
    'TimeoutError'
    """
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


@logger.inject_lambda_context(log_event=False, clear_state=True)
@metrics.log_metrics
def _sweep(event: Mapping[str, object], context: LambdaContext) -> dict[str, str]:
    """Run the scheduled sweep (``{"Action": "RetireOldKeys", "SecretId": ...}``)."""
    quiet_sdk_loggers()
    metrics.add_dimension(name="Step", value=sweep.ACTION)
    try:
        secret_id = sweep.secret_id_of(event)
        logger.append_keys(step=sweep.ACTION, secret_id=secret_id)
        rt = runtime()
        aws = rt.clients_for(secret_id, context)
        outcome = sweep.retire_old_keys(
            sm=aws.sm, iam=aws.iam, settings=rt.settings, secret_id=secret_id, now=keys.now_utc()
        )
    except Exception:
        metrics.add_metric(name="RotationStepFailed", unit=MetricUnit.Count, value=1)
        raise
    metrics.add_metric(name="RotationStepSucceeded", unit=MetricUnit.Count, value=1)
    logger.info("sweep done", extra=outcome.summary())
    return outcome.summary()


@logger.inject_lambda_context(log_event=False, clear_state=True)
@metrics.log_metrics
def _custom_resource(event: Mapping[str, object], context: LambdaContext) -> dict[str, str]:
    """Serve ``Custom::SmtpUserKeys`` and answer CloudFormation at the ResponseURL."""
    quiet_sdk_loggers()
    metrics.add_dimension(name="Step", value=custom_resource.RESOURCE_TYPE)
    try:
        # Read here, not in Settings: a bad configuration must still be answered (FAILED).
        local_world = os.environ.get(custom_resource.LOCAL_WORLD_VARIABLE) == "1"
        request = custom_resource.parse(event, local_world=local_world)
        logger.append_keys(
            step=custom_resource.RESOURCE_TYPE,
            request_type=request.request_type,
            logical_resource_id=request.logical_id,
        )
        answer = custom_resource.serve(request, runtime)
        custom_resource.respond(
            request, answer, timeout=max(1.0, min(_ANSWER_TIMEOUT, _seconds_left(context)))
        )
    except Exception:
        metrics.add_metric(name="CustomResourceFailed", unit=MetricUnit.Count, value=1)
        raise
    ok = answer.status == "SUCCESS"
    name = "CustomResourceSucceeded" if ok else "CustomResourceFailed"
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    log = logger.info if ok else logger.warning
    log("custom resource answered", extra=answer.summary())
    return answer.summary()


def _parse(event: SecretsManagerEvent) -> tuple[Callable[[steps.StepContext], None], str, str]:
    """Return the step function, SecretId and token of an event; tag logs and metrics with them."""
    try:
        step_name = str(event.step)
    except KeyError:
        step_name = "(none)"
    step = steps.STEPS.get(step_name)
    if step is None:
        msg = f"unknown rotation step {step_name!r}: expected one of {', '.join(steps.STEPS)}"
        raise UnknownStepError(msg)
    metrics.add_dimension(name="Step", value=step_name)
    secret_id: str | None
    token: str | None
    try:
        secret_id, token = event.secret_id, event.client_request_token
    except KeyError:
        secret_id, token = None, None
    if not secret_id or not token:
        msg = "the event needs SecretId and ClientRequestToken (a Secrets Manager rotation event)"
        raise BadEventError(msg)
    logger.append_keys(step=step_name, secret_id=secret_id, version_id=token)
    return step, str(secret_id), str(token)


def _rotation_token(event: SecretsManagerEvent) -> str | None:
    """Return the event's RotationToken, which PutSecretValue must carry (never logged)."""
    token = event.get("RotationToken")
    return token if isinstance(token, str) and token else None


def _seconds_left(context: LambdaContext) -> float:
    return max(0.0, context.get_remaining_time_in_millis() / 1000 - _RESERVE_SECONDS)


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str] | None:
    """Run a rotation step, the scheduled sweep, or the key clean-up custom resource.

    Parameters
    ----------
    event
        ``{"SecretId": ..., "ClientRequestToken": ..., "Step": "createSecret" | "setSecret" |
        "testSecret" | "finishSecret"}`` (``RotationToken`` may be present and is never logged),
        or the schedule's ``{"Action": "RetireOldKeys", "SecretId": ...}``, whose summary is
        returned, or a CloudFormation request for ``Custom::SmtpUserKeys`` (``RequestType``
        present), answered at its ResponseURL and summarised in the return value.
    context
        The Lambda context (harnesses pass ``sandbox.secrets_manager.LocalLambdaContext``).

    Raises
    ------
    RotationError
        The step could not complete; the message says why and what to do.
    """
    if isinstance(event, dict) and "RequestType" in event:
        answer: dict[str, str] = _custom_resource(event, context)
        return answer
    if isinstance(event, dict) and "Action" in event:
        summary: dict[str, str] = _sweep(event, context)
        return summary
    _handle(event, context)
    return None


def reset_runtime() -> None:
    """Forget the cold-start runtime, as a new container would (harnesses, between worlds).

    The runtime keeps member accounts' assumed-role credentials; a harness that starts a new AWS
    (moto) with the same environment must not reuse them.
    """
    global _runtime  # noqa: PLW0603 - the per-container cache of a Lambda function
    _runtime = None
