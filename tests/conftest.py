"""Shared fixtures: an offline AWS (moto), an IAM user with an SMTP key, an SES-like SMTP server.

* ``aws``: moto's ``mock_aws`` with fake credentials and ``AWS_DEFAULT_REGION=us-east-1`` in the
  environment (real credentials and profiles are masked, so nothing can reach AWS).
* ``iam``: a boto3 IAM client inside ``aws``.
* ``smtp_user``: an IAM user ``ses-smtp-user`` with one Active access key (:class:`IamKey`).
* ``ses_server``: a running :class:`sandbox.ses_smtp.SesSmtpServer` for us-east-1 (no propagation
  delay) whose test CA is trusted through ``SSL_CERT_FILE``, so the default SSL context verifies it.
* ``ses_server_factory``: builds more servers with other options; each is stopped after the test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from sandbox.lambda_stdout import follow_current_stdout
from sandbox.ses_smtp import SesSmtpServer
from ses_smtp_rotator.password import derive_smtp_password

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from mypy_boto3_iam import IAMClient

REGION = "us-east-1"
SMTP_USER_NAME = "ses-smtp-user"
_FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}
_MASKED_ENV = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_CONFIG_FILE")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Send the function's log lines to whatever ``sys.stdout`` is (pytest swaps it per test)."""
    del session
    follow_current_stdout()


@dataclass(frozen=True)
class IamKey:
    """An IAM user's access key, as the tests see it (repr hides the secret)."""

    user_name: str
    access_key_id: str
    secret_access_key: str

    def password(self, region: str = REGION) -> str:
        """The v4 SMTP password of this key for ``region``."""
        return derive_smtp_password(self.secret_access_key, region)

    def __repr__(self) -> str:
        return f"IamKey({self.user_name!r}, {self.access_key_id!r}, secret=***)"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run the test inside moto's ``mock_aws`` with fake credentials in the environment."""
    for name in _MASKED_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in _FAKE_ENV.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


@pytest.fixture
def iam(aws: None) -> IAMClient:  # noqa: ARG001 - needs moto active, not its value
    """A boto3 IAM client talking to moto."""
    return boto3.client("iam")


def create_smtp_key(iam: IAMClient, user_name: str = SMTP_USER_NAME) -> IamKey:
    """Create ``user_name`` if needed and a new access key for it."""
    if user_name not in {user["UserName"] for user in iam.list_users()["Users"]}:
        iam.create_user(UserName=user_name)
    key = iam.create_access_key(UserName=user_name)["AccessKey"]
    return IamKey(user_name, key["AccessKeyId"], key["SecretAccessKey"])


@pytest.fixture
def smtp_user(iam: IAMClient) -> IamKey:
    """The IAM user ``ses-smtp-user`` with one Active access key."""
    return create_smtp_key(iam)


@pytest.fixture
def ses_server_factory(
    aws: None,  # noqa: ARG001 - needs moto active, not its value
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., SesSmtpServer]]:
    """Return ``make(**options)``: start an SES-like server, trusted through SSL_CERT_FILE."""
    servers: list[SesSmtpServer] = []

    def make(**options: Any) -> SesSmtpServer:  # noqa: ANN401 - forwards SesSmtpServer's options
        server = SesSmtpServer(**{"region": REGION, **options}).start()
        servers.append(server)
        monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_file))
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def ses_server(ses_server_factory: Callable[..., SesSmtpServer]) -> SesSmtpServer:
    """A running SES-like SMTP server for us-east-1 (STARTTLS, no propagation delay)."""
    return ses_server_factory()


# Every test is scanned for leaked secret material (tests/leakscan.py); pytester runs that
# plugin on a planted leak (tests/unit/test_leakscan.py).
pytest_plugins = ("pytester", "tests.leakscan")
