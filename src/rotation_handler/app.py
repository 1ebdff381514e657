"""Lambda entry point: the Secrets Manager rotation function for SES SMTP credentials.

Settings and boto3 clients are built once per cold start: Lambda never changes a running
environment's variables (a configuration change starts new environments). Each invocation then
runs the staging guard and dispatches to the step.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config

from rotation_handler import (
    accounts,
    cloudformation,
    custom_resource,
    events,
    guard,
    keys,
    notices,
    steps,
    sweep,
    versions,
)
from rotation_handler.context import StepContext
from rotation_handler.observability import count_throttles, logger, metrics
from rotation_handler.settings import Settings
from rotation_handler.state import Verdict
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
# The failure notice's client: a notice must not spend the time the step's own error needs to
# reach the log (at most 2 attempts of 2 + 3 s).
_NOTICE_CONFIG = _BOTO_CONFIG.merge(
    Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=2, read_timeout=3)
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
    # The clients for a secret's account: the ones above, or a member account's assumed role.
    account_clients: accounts.AccountClients

    @functools.cached_property
    def cloudformation(self) -> custom_resource.StackReader:
        """The CloudFormation client, built when the key clean-up first needs it."""
        client: custom_resource.StackReader = self.account_clients.session.client(
            "cloudformation", config=_BOTO_CONFIG
        )
        return client

    @functools.cached_property
    def events(self) -> notices.EventPublisher:
        """The EventBridge client of the function's own account, built for the first notice."""
        client: notices.EventPublisher = self.account_clients.session.client(
            "events", config=_NOTICE_CONFIG
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
    """Return the cold-start runtime, building it from ``environ`` (the process's) on first use."""
    global _runtime  # noqa: PLW0603 - the per-container cache of a Lambda function
    if _runtime is None:
        settings = Settings.from_env(os.environ if environ is None else environ)
        session = boto3.session.Session(region_name=settings.region)
        own = accounts.Clients(
            sm=session.client("secretsmanager", config=_BOTO_CONFIG),
            iam=session.client("iam", config=_BOTO_CONFIG),
        )
        count_throttles(own.sm)
        count_throttles(own.iam)
        _runtime = Runtime(
            settings=settings,
            sm=own.sm,
            iam=own.iam,
            account_clients=accounts.AccountClients(
                own=own,
                settings=settings,
                session=session,
                config=_BOTO_CONFIG,
            ),
        )
        metrics.namespace = settings.metrics_namespace
    return _runtime


@dataclass(frozen=True)
class _Job:
    """One of the function's three jobs: how it runs, and the metrics it counts."""

    run: Callable[[dict[str, Any], LambdaContext], tuple[dict[str, str] | None, bool]]
    succeeded: str
    failed: str


@logger.inject_lambda_context(log_event=False, clear_state=True)
@metrics.log_metrics
def _invoke(event: dict[str, Any], context: LambdaContext) -> dict[str, str] | None:
    """Run one job inside the one invocation wrapper: logs, metrics, the failure line."""
    quiet_sdk_loggers()  # again: loggers made or lowered since the import (see observability)
    job = _JOBS[events.kind_of(event)]
    try:
        result, ok = job.run(event, context)
    except Exception as err:
        metrics.add_metric(name=job.failed, unit=MetricUnit.Count, value=1)
        # One line that names the step, the token and why (appended keys once the event
        # parsed): what `ses-smtp-rotator rotate --wait` and people read.
        logger.error("step failed", extra={"error": first_line(err)})
        raise
    metrics.add_metric(name=job.succeeded if ok else job.failed, unit=MetricUnit.Count, value=1)
    return result


def _step(event: dict[str, Any], context: LambdaContext) -> tuple[None, bool]:
    """Run a rotation step: the staging guard, then the step itself."""
    checked = events.step_event(event)
    metrics.add_dimension(name="Step", value=checked.step)
    logger.append_keys(step=checked.step, secret_id=checked.secret_id, version_id=checked.token)
    rt = runtime()
    aws = rt.clients_for(checked.secret_id, context)
    with notices.Streak(
        sm=aws.sm,
        events=lambda: rt.events,
        settings=rt.settings,
        event=checked,
        function_name=getattr(context, "function_name", None),
    ) as streak:
        _run_step(checked, aws, rt, context, streak)
    logger.info("step succeeded")
    return None, True


def _run_step(
    checked: events.StepEvent,
    aws: accounts.Clients,
    rt: Runtime,
    context: LambdaContext,
    streak: notices.Streak,
) -> None:
    state, verdict = guard.check(
        aws.sm, secret_id=checked.secret_id, token=checked.token, settings=rt.settings
    )
    streak.state = state
    if verdict is Verdict.ALREADY_CURRENT:
        logger.info("version is already AWSCURRENT")
    steps.STEPS[checked.step](
        StepContext(
            sm=aws.sm,
            iam=aws.iam,
            settings=rt.settings,
            state=state,
            token=checked.token,
            verdict=verdict,
            seconds_left=lambda: _seconds_left(context),
            versions=versions.Versions(sm=aws.sm, state=state, default_region=rt.settings.region),
            rotation_token=checked.rotation_token,
        )
    )


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


def _sweep(event: dict[str, Any], context: LambdaContext) -> tuple[dict[str, str], bool]:
    """Run the scheduled sweep (``{"Action": "RetireOldKeys", "SecretId": ...}``)."""
    metrics.add_dimension(name="Step", value=sweep.ACTION)
    secret_id = sweep.secret_id_of(event)
    logger.append_keys(step=sweep.ACTION, secret_id=secret_id)
    rt = runtime()
    aws = rt.clients_for(secret_id, context)
    outcome = sweep.retire_old_keys(
        sm=aws.sm, iam=aws.iam, settings=rt.settings, secret_id=secret_id, now=keys.now_utc()
    )
    logger.info("sweep done", extra=outcome.summary())
    return outcome.summary(), True


def _custom_resource(event: dict[str, Any], context: LambdaContext) -> tuple[dict[str, str], bool]:
    """Serve a custom resource and answer CloudFormation at the ResponseURL."""
    # The request's type is a claim: only a type this function serves names the metric series.
    claimed = event.get("ResourceType")
    kind = claimed if claimed in custom_resource.SERVED_TYPES else custom_resource.RESOURCE_TYPE
    metrics.add_dimension(name="Step", value=kind)
    request = cloudformation.parse(event)
    logger.append_keys(
        step=kind,
        request_type=request.request_type,
        logical_resource_id=request.logical_id,
    )
    answer = custom_resource.serve(request, runtime)
    cloudformation.respond(
        request, answer, timeout=max(1.0, min(_ANSWER_TIMEOUT, _seconds_left(context)))
    )
    ok = answer.status == "SUCCESS"
    (logger.info if ok else logger.warning)("custom resource answered", extra=answer.summary())
    return answer.summary(), ok


_JOBS: Final = {
    events.Kind.STEP: _Job(
        run=_step, succeeded="RotationStepSucceeded", failed="RotationStepFailed"
    ),
    events.Kind.SWEEP: _Job(
        run=_sweep, succeeded="RotationStepSucceeded", failed="RotationStepFailed"
    ),
    events.Kind.CUSTOM_RESOURCE: _Job(
        run=_custom_resource, succeeded="CustomResourceSucceeded", failed="CustomResourceFailed"
    ),
}


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
        The step could not complete; the message says why and what to do. An event that is
        not a JSON object, or whose fields are not what Secrets Manager sends, is a
        :class:`~rotation_handler.exceptions.BadEventError` quoting only a short part of them.
    """
    events.kind_of(event)  # not a JSON object: refused before the wrappers read it
    result: dict[str, str] | None = _invoke(event, context)
    return result


def reset_runtime() -> None:
    """Forget the cold-start runtime, as a new execution environment would.

    What Lambda does when the function's configuration changes, or a new container starts: the
    local world calls it when it starts and stops, and when it changes the function's variables.
    The runtime keeps member accounts' assumed-role credentials, which a new AWS (moto) must not
    reuse.
    """
    global _runtime  # noqa: PLW0603 - the per-container cache of a Lambda function
    _runtime = None
