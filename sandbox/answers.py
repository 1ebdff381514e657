"""Where the function answers CloudFormation in the local world: http on 127.0.0.1.

CloudFormation's answers go to presigned S3 URLs (https, an AWS host), the only ones the function
accepts. The local world's CloudFormation stand-in (:class:`CloudFormationStandIn`: requests out,
answers in) listens on 127.0.0.1 instead, so while a world runs, :func:`on_loopback` widens the
function's rule from outside; the function itself reads no switch for it, and no template can turn
it on.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Final, Protocol, Self

from rotation_handler import cloudformation
from sandbox import rotation_service
from sandbox.secrets_manager import LocalLambdaContext

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sandbox.secrets_manager import SecretsManagerDriver

ANSWER_WAIT: Final = 5.0  # seconds: the function PUTs its answer before its handler returns


class Deployment(Protocol):
    """A world (or an app of one): its driver invokes the function."""

    @property
    def driver(self) -> SecretsManagerDriver:
        """The driver whose handler is the function."""


def _aws_or_loopback(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    loopback = parts.scheme == "http" and parts.hostname == "127.0.0.1"
    return loopback or cloudformation.aws_answer_url(url)


@contextlib.contextmanager
def on_loopback() -> Iterator[None]:
    """Let the function answer custom resource requests at http://127.0.0.1 too, for the block."""
    saved = cloudformation.answer_url_allowed
    cloudformation.answer_url_allowed = _aws_or_loopback
    try:
        yield
    finally:
        cloudformation.answer_url_allowed = saved


class CloudFormationStandIn:
    """CloudFormation's side of a custom resource: requests out, answers in (on 127.0.0.1).

    ``fail_next`` makes the next answers fail with HTTP 500 (CloudFormation's S3 having a bad
    moment); ``bodies`` keeps every answer's text, so that a test can scan it for secrets.
    """

    def __init__(self) -> None:
        self.answers: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.bodies: list[str] = []
        self.fail_next = 0
        self.requests = 0
        answers, bodies, owner = self.answers, self.bodies, self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                bodies.append(body)
                if owner.fail_next:
                    owner.fail_next -= 1
                    self.send_response(500)
                else:
                    answers.put((self.command, json.loads(body)))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:  # noqa: ANN401 - http.server's signature
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        """Start listening."""
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        """Stop listening (bounded)."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=ANSWER_WAIT)

    @property
    def url(self) -> str:
        """The ResponseURL of every request (presigned, as CloudFormation's are)."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/answer?signature=presigned"

    def request(  # noqa: PLR0913 - every field of the request is keyword-only
        self,
        request_type: str,
        *,
        resource_type: str,
        logical_id: str,
        properties: dict[str, Any],
        old_properties: dict[str, Any] | None = None,
        physical_id: str | None = None,
        stack_id: str = "arn:aws:cloudformation:us-east-1:123456789012:stack/app-a/1",
    ) -> dict[str, Any]:
        """Return a custom resource request as CloudFormation sends it (a new RequestId each)."""
        self.requests += 1
        event: dict[str, Any] = {
            "RequestType": request_type,
            "ResponseURL": self.url,
            "StackId": stack_id,
            "RequestId": f"request-{self.requests}",
            "LogicalResourceId": logical_id,
            "ResourceType": resource_type,
            "ResourceProperties": {
                "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:fleet",
                **properties,
            },
        }
        if old_properties is not None:
            event["OldResourceProperties"] = old_properties
        if physical_id is not None:
            event["PhysicalResourceId"] = physical_id
        return event

    def send(self, world: Deployment, event: dict[str, Any]) -> dict[str, Any]:
        """Invoke the function with ``event``; return the answer it PUT (waits are bounded)."""
        with rotation_service.foreground():
            world.driver.handler(event, LocalLambdaContext())
        method, answer = self.answers.get(timeout=ANSWER_WAIT)
        if method != "PUT" or any(
            answer.get(key) != event[key] for key in ("RequestId", "StackId", "LogicalResourceId")
        ):
            msg = f"an answer that is not for request {event['RequestId']}: {method} {answer}"
            raise AssertionError(msg)
        return answer
