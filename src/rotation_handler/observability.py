"""The function's Powertools Logger and Metrics, shared by every module of the handler."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

from ses_smtp_rotator.sdk_logging import quiet_sdk_loggers

# Lambda's application log level DEBUG puts the root logger at DEBUG, and botocore would then log
# CreateAccessKey's answer and PutSecretValue's parameters: hold the SDK's loggers at WARNING now
# (the handler does it again at every invocation, for loggers made or changed since).
quiet_sdk_loggers()

# Powertools writes to the stdout of import time: Lambda never swaps it (a harness that does
# points the handler elsewhere itself).
logger = Logger(service="ses-smtp-rotation")
metrics = Metrics(service="ses-smtp-rotation")
