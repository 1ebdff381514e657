"""Where the function answers CloudFormation in the local world: http on 127.0.0.1.

CloudFormation's answers go to presigned S3 URLs (https, an AWS host), the only ones the function
accepts. The local world's CloudFormation stand-in listens on 127.0.0.1 instead, so while a world
runs, :func:`on_loopback` widens the function's rule from outside; the function itself reads no
switch for it, and no template can turn it on.
"""

from __future__ import annotations

import contextlib
import urllib.parse
from typing import TYPE_CHECKING

from rotation_handler import cloudformation

if TYPE_CHECKING:
    from collections.abc import Iterator


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
