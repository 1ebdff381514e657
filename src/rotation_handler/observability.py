"""The function's Powertools Logger and Metrics, shared by every module of the handler."""

from __future__ import annotations

from typing import Any, Final

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from ses_smtp_rotator.sdk_logging import quiet_sdk_loggers

# Lambda's application log level DEBUG puts the root logger at DEBUG, and botocore would then log
# CreateAccessKey's answer and PutSecretValue's parameters: hold the SDK's loggers at WARNING now
# (the handler does it again at every invocation, for loggers made or changed since).
quiet_sdk_loggers()

# Powertools writes to the stdout of import time: Lambda never swaps it (a harness that does
# points the handler elsewhere itself).
logger = Logger(service="ses-smtp-rotation")
metrics = Metrics(service="ses-smtp-rotation")

# Error answers that say "slow down": IAM's and Secrets Manager's quotas are shared with the apps.
THROTTLING: Final = frozenset(
    {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
)
THROTTLED_METRIC: Final = "ThrottledAnswers"
_COUNTER_ID: Final = "ses-smtp-rotation-throttled-answers"


def count_throttles(client: Any) -> None:  # noqa: ANN401 - any boto3 client
    """Count each throttled answer ``client`` gets in :data:`THROTTLED_METRIC` (no extra call).

    botocore's standard retry absorbs most of them (a step fails only when the last of its five
    attempts is throttled too), so the metric shows the load that the retries hid.
    """
    client.meta.events.register("needs-retry", _on_answer, unique_id=_COUNTER_ID)


def _on_answer(response: tuple[Any, dict[str, Any]] | None = None, **_: Any) -> None:  # noqa: ANN401 - botocore hook
    if response is not None and response[1].get("Error", {}).get("Code") in THROTTLING:
        metrics.add_metric(name=THROTTLED_METRIC, unit=MetricUnit.Count, value=1)
