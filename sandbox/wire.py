"""What the fault layer and the throttled world put on the wire instead of moto's answer.

:func:`throttling_response` is a service's real throttling answer in its own protocol,
:func:`deliver` sends one HTTP attempt to moto and drops its answer (a lost answer),
:func:`without_backoff` keeps botocore's standard retry but drops its sleep.
"""

from __future__ import annotations

import json
import weakref
from io import BytesIO
from typing import TYPE_CHECKING, Any, Final

from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.httpsession import URLLib3Session
from botocore.retries import quota, standard
from moto.core.models import botocore_stubber

if TYPE_CHECKING:
    from collections.abc import Iterator

NOWHERE: Final = "https://throttled.invalid/"


class RawBody(BytesIO):
    """The raw body botocore streams an answer from (what urllib3 would hand it)."""

    def stream(self, **_: Any) -> Iterator[bytes]:  # noqa: ANN401 - botocore's signature
        """Yield the body in one chunk."""
        chunk = self.read()
        while chunk:
            yield chunk
            chunk = self.read()


def throttling_response(service: str, url: str) -> AWSResponse:
    """Return the HTTP answer ``service`` gives a throttled request, in its protocol.

    Secrets Manager speaks JSON 1.1 (``__type``); IAM speaks the query protocol (XML error).
    """
    if service == "iam":
        body = (
            b'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error>'
            b"<Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"
            b"</Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
        )
        content_type = "text/xml"
    else:
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
        content_type = "application/x-amz-json-1.1"
    headers = HTTPHeaders()
    headers["Content-Type"] = content_type
    headers["x-amzn-RequestId"] = "00000000-0000-0000-0000-000000000000"
    return AWSResponse(url, 400, headers, RawBody(body))


_WITHOUT_BACKOFF: weakref.WeakSet[Any] = weakref.WeakSet()


def without_backoff(client: Any) -> None:  # noqa: ANN401 - a boto3 client
    """Give ``client`` botocore's standard retry with no back-off sleep (idempotent).

    The same retry conditions, maximum attempts and retry quota as the client's own standard
    mode; only the jittered sleep between attempts is zero, so a fault that botocore retries five
    times costs milliseconds instead of seconds. What is retried, and how often, is unchanged.
    """
    if client in _WITHOUT_BACKOFF:
        return
    service = client.meta.service_model.service_id.hyphenize()
    max_attempts = client.meta.config.retries.get("total_max_attempts")
    retry_quota = standard.RetryQuotaChecker(quota.RetryQuota())
    handler = standard.RetryHandler(
        retry_policy=standard.RetryPolicy(
            retry_checker=standard.StandardRetryConditions(
                max_attempts=max_attempts or standard.DEFAULT_MAX_ATTEMPTS
            ),
            retry_backoff=standard.ExponentialBackoff(random=lambda: 0.0),
        ),
        retry_event_adapter=standard.RetryEventAdapter(),
        retry_quota=retry_quota,  # type: ignore[arg-type]
    )
    unique_id = f"retry-config-{service}"
    # A success gives back what retries took from the quota, as botocore's own handler does.
    client.meta.events.register(
        f"after-call.{service}", retry_quota.release_retry_quota, unique_id=f"{unique_id}-quota"
    )
    client.meta.events.unregister(f"needs-retry.{service}", unique_id=unique_id)
    client.meta.events.register(f"needs-retry.{service}", handler.needs_retry, unique_id=unique_id)
    _WITHOUT_BACKOFF.add(client)


def deliver(request: Any, event_name: str) -> None:  # noqa: ANN401 - AWSPreparedRequest
    """Send one HTTP attempt to moto (in-process or its server) and drop the answer."""
    if botocore_stubber(event_name, request) is None:
        URLLib3Session().send(request)
