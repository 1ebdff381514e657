"""Keep the AWS SDK's loggers from writing request and response bodies, whatever the log level.

At DEBUG, botocore logs every request's parameters and every answer's body (``botocore.endpoint``,
``botocore.parsers``), urllib3 and the signer log more around them. Those bodies are this
project's secrets: CreateAccessKey answers with the secret access key, PutSecretValue carries the
SMTP passwords, GetSecretValue answers with the whole secret. Lambda's logging controls (application
log level DEBUG) and an app's ``logging.basicConfig(level=logging.DEBUG)`` both put the root
logger at DEBUG, and the SDK's loggers inherit it.

:func:`quiet_sdk_loggers` therefore holds every logger of the SDK's namespaces at WARNING or above
(a higher level chosen by the process is kept) and adds a filter to each of them that drops any
record below WARNING, so that a logger later set to DEBUG by hand still writes nothing below
WARNING. The rotation function calls it at import and at every invocation, the app-side client
before every read of the secret; it is idempotent and cheap.
"""

from __future__ import annotations

import logging
import threading
from typing import Final

SDK_LOGGERS: Final = ("botocore", "boto3", "urllib3", "s3transfer")
QUIET_LEVEL: Final = logging.WARNING

_lock = threading.Lock()


class _BelowQuietLevel(logging.Filter):
    """Drop the records an SDK logger makes below :data:`QUIET_LEVEL`."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= QUIET_LEVEL


_FILTER: Final = _BelowQuietLevel()


def _is_sdk(name: str) -> bool:
    return any(name == top or name.startswith(top + ".") for top in SDK_LOGGERS)


def quiet_sdk_loggers() -> None:
    """Hold the SDK's loggers (and every child logger made so far) at WARNING or above.

    Examples
    --------
    >>> quiet_sdk_loggers()
    >>> logging.getLogger("botocore.parsers").isEnabledFor(logging.DEBUG)
    False
    """
    with _lock:
        for name in SDK_LOGGERS:
            logging.getLogger(name)  # make sure the namespace's top logger exists
        for name, logger in list(logging.root.manager.loggerDict.items()):
            if not isinstance(logger, logging.Logger) or not _is_sdk(name):
                continue  # placeholders have no records of their own
            if name in SDK_LOGGERS or logger.level != logging.NOTSET:
                # A child left at NOTSET inherits from its (now quiet) parent.
                logger.setLevel(max(logger.level, QUIET_LEVEL))
            if _FILTER not in logger.filters:
                logger.addFilter(_FILTER)
