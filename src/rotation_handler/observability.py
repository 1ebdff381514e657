"""The function's Powertools Logger and Metrics, shared by every module of the handler."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

logger = Logger(service="ses-smtp-rotation")
metrics = Metrics(service="ses-smtp-rotation")
