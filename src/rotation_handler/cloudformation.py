"""CloudFormation's custom resource protocol: the request it sends, the answer it waits for.

The answer is a PUT of JSON to the request's ``ResponseURL``: https to an ``amazonaws.com`` host
(where CloudFormation's presigned S3 URLs point), and nothing else. The local world, which has no
AWS, replaces :data:`answer_url_allowed` from outside (``sandbox``); the function reads no switch
for it. The answer never carries a secret, and the URL is never logged.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from rotation_handler.exceptions import CustomResourceError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

_PUT_ATTEMPTS: Final = 3
# Where CloudFormation's presigned response URLs point (S3, in every partition).
_AWS_HOST_SUFFIXES: Final = (".amazonaws.com", ".amazonaws.com.cn")


@dataclass(frozen=True, kw_only=True)
class Request:
    """The parts of a CloudFormation custom resource request the function uses."""

    request_type: str
    response_url: str
    stack_id: str
    request_id: str
    logical_id: str
    physical_id: str | None
    resource_type: str
    properties: Mapping[str, Any]
    # An Update's previous properties (OldResourceProperties); empty for Create and Delete.
    old_properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Answer:
    """What the function answers CloudFormation."""

    status: Literal["SUCCESS", "FAILED"]
    physical_id: str
    reason: str = ""

    def summary(self) -> dict[str, str]:
        """Return the answer as the invocation's JSON result (no secret in it)."""
        return {
            "Status": self.status,
            "PhysicalResourceId": self.physical_id,
            "Reason": self.reason,
        }


def aws_answer_url(url: str) -> bool:
    """Whether ``url`` is where CloudFormation's answers go: https to an AWS host.

    Examples
    --------
    >>> aws_answer_url("https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x")
    True
    >>> aws_answer_url("http://127.0.0.1:8080/answer")
    False
    """
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme == "https" and host.endswith(_AWS_HOST_SUFFIXES)


# Which ResponseURLs the function answers at. The local world supplies its own rule here.
answer_url_allowed: Callable[[str], bool] = aws_answer_url


def parse(event: Mapping[str, Any]) -> Request:
    """Read a custom resource request.

    Raises
    ------
    CustomResourceError
        The event has no ResponseURL the function may answer to (https to an AWS host): nothing
        is done, since CloudFormation could not be told.
    """
    url = str(event.get("ResponseURL") or "")
    if not answer_url_allowed(url):
        msg = (
            "the custom resource request needs an https ResponseURL on an amazonaws.com host "
            "(CloudFormation's); nothing was done"
        )
        raise CustomResourceError(msg)
    properties, old = event.get("ResourceProperties"), event.get("OldResourceProperties")
    return Request(
        request_type=str(event.get("RequestType", "")),
        response_url=url,
        stack_id=str(event.get("StackId", "")),
        request_id=str(event.get("RequestId", "")),
        logical_id=str(event.get("LogicalResourceId", "")),
        physical_id=str(event["PhysicalResourceId"]) if event.get("PhysicalResourceId") else None,
        resource_type=str(event.get("ResourceType", "")),
        properties=properties if isinstance(properties, dict) else {},
        old_properties=old if isinstance(old, dict) else {},
    )


def respond(request: Request, answer: Answer, *, timeout: float) -> None:
    """PUT the answer to the request's ResponseURL (up to three attempts, each bounded).

    Raises
    ------
    CustomResourceError
        No attempt was answered with success (the message names no URL: it is presigned).
    """
    body = json.dumps(
        {
            "Status": answer.status,
            "Reason": answer.reason or answer.status,
            "PhysicalResourceId": answer.physical_id,
            "StackId": request.stack_id,
            "RequestId": request.request_id,
            "LogicalResourceId": request.logical_id,
            "NoEcho": False,
        }
    ).encode()
    headers = {"Content-Type": "", "Content-Length": str(len(body))}
    failure = ""
    for attempt in range(_PUT_ATTEMPTS):
        if attempt:
            time.sleep(attempt)
        # parse() allowed https, or http to 127.0.0.1, and nothing else (no file: or custom).
        put = urllib.request.Request(request.response_url, data=body, method="PUT", headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(put, timeout=timeout):  # noqa: S310 # nosec B310 - see above
                return
        except urllib.error.HTTPError as err:
            failure = f"HTTP {err.code}"
        except OSError as err:  # URLError, time-outs, connection errors
            failure = type(err).__name__
    msg = f"could not answer CloudFormation at the ResponseURL ({failure}, {_PUT_ATTEMPTS} tries)"
    raise CustomResourceError(msg)
