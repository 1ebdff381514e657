"""The function's Powertools Logger and Metrics, shared by every module of the handler."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from aws_lambda_powertools import Logger, Metrics

from ses_smtp_rotator.sdk_logging import quiet_sdk_loggers


class _CurrentStdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Write to whatever ``sys.stdout`` is at emit time.

    Lambda never swaps stdout, but test runners and the demo do; a handler bound to the stdout of
    import time would write to a closed stream there.
    """

    @property
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


# Lambda's application log level DEBUG puts the root logger at DEBUG, and botocore would then log
# CreateAccessKey's answer and PutSecretValue's parameters: hold the SDK's loggers at WARNING now
# (the handler does it again at every invocation, for loggers made or changed since).
quiet_sdk_loggers()

logger = Logger(service="ses-smtp-rotation", logger_handler=_CurrentStdoutHandler())
metrics = Metrics(service="ses-smtp-rotation")
