"""The local world in one context manager: moto, the SES-like SMTP server, the user, the secret.

``local_world()`` is what the tests, ``make demo`` and the benchmarks share. It sets the
environment a deployed function would see (region, fake AWS credentials, ``SSL_CERT_FILE`` for the
test CA, the function's own variables), creates the IAM user and the secret with the bootstrap
value as ``template.yaml`` does, and restores the environment on exit.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from moto.iam.models import iam_backends

from sandbox import answers, apps, rotation_service, secrets_manager
from sandbox.moto_world import (
    FunctionEnvironment,
    aws,
    cold_start,
    new_container_around,
    patched_env,
)
from sandbox.secrets_manager import SecretsManagerDriver
from sandbox.ses_smtp import SesSmtpServer
from ses_smtp_rotator import smtp
from ses_smtp_rotator.password import derive_smtp_password
from ses_smtp_rotator.secret import parse_secret

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, MutableMapping

    from mypy_boto3_iam import IAMClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from sandbox.rotation_service import Service
    from sandbox.secrets_manager import Handler, Rotation

# Re-exported: what an app's user may do (sandbox.apps creates every app).
SES_SEND_POLICY = apps.SES_SEND_POLICY
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def _default_handler(event: dict[str, Any], context: Any) -> object:  # noqa: ANN401
    # Imported late so that the function's modules load with the world's environment in place.
    from rotation_handler.app import lambda_handler  # noqa: PLC0415

    return lambda_handler(event, context)


class Member(Protocol):
    """What the world needs of an app in another account (a ``sandbox.accounts.MemberAccount``)."""

    @property
    def account_id(self) -> str:
        """The member account."""

    @property
    def driver(self) -> SecretsManagerDriver:
        """The member secret's rotation driver."""


@dataclass
class World:
    """A running local world: clients, the SMTP server and the rotation driver."""

    region: str
    user_name: str
    secret_arn: str
    ses: SesSmtpServer
    driver: SecretsManagerDriver
    iam: IAMClient
    sm: SecretsManagerClient
    endpoint_url: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    # What RotateSecret on the secret runs (asynchronously, through the driver) and its logs.
    service: Service | None = None
    # Apps set up in other accounts (sandbox.accounts.add_member_account).
    members: list[Member] = field(default_factory=list)

    def rotate(self, **kwargs: Any) -> Rotation:  # noqa: ANN401 - forwarded to the driver
        """Run a rotation through the driver (see :meth:`SecretsManagerDriver.rotate`)."""
        return self.driver.rotate(**kwargs)

    def cancel_rotation(self, token: str) -> None:
        """Start over as the README's runbook says: cancel, then take AWSPENDING off ``token``.

        The next :meth:`rotate` turns rotation back on, as ``rotate-secret`` does.
        """
        self.sm.cancel_rotate_secret(SecretId=self.secret_arn)
        self.sm.update_secret_version_stage(
            SecretId=self.secret_arn, VersionStage="AWSPENDING", RemoveFromVersionId=token
        )

    def cold_start(self) -> None:
        """Start the function cold after a change of its variables (Lambda's new environments)."""
        cold_start()

    def sweep(self) -> dict[str, str]:
        """Invoke the function as its schedule does: retire the old key once its grace is over."""
        return secrets_manager.sweep(self.driver, self.secret_arn)

    def another_deployment(self, secret_name: str) -> SecretsManagerDriver:
        """Deploy a second stack whose secret names this world's IAM user; return its driver.

        Its function is bound to its own secret (``SECRET_ARN``) while it runs, as a second
        stack's function would be; both share the user, the SMTP server and moto.
        """
        value = json.dumps(self.bootstrap_value())
        arn = self.sm.create_secret(Name=secret_name, SecretString=value)["ARN"]
        handler, function = self.driver.handler, FunctionEnvironment({"SECRET_ARN": arn})

        def bound_handler(event: dict[str, Any], context: Any) -> object:  # noqa: ANN401 - Lambda contract
            with function.entered():
                return handler(event, context)

        driver = SecretsManagerDriver(secret_id=arn, handler=bound_handler, region=self.region)
        driver.enable_rotation()
        return driver

    def write_bootstrap_over_current(self, value: Mapping[str, Any] | None = None) -> str:
        """Do what CloudFormation does when the secret's template value changes; return the id.

        The new value (by default the bootstrap: user, region, host, port) is put as AWSCURRENT;
        the version that held the live key becomes AWSPREVIOUS.
        """
        put = self.sm.put_secret_value(
            SecretId=self.secret_arn,
            SecretString=json.dumps(value or self.bootstrap_value()),
            VersionStages=["AWSCURRENT"],
        )
        return put["VersionId"]

    def value(self, stage: str = "AWSCURRENT") -> dict[str, Any]:
        """Return the JSON value of a version of the secret."""
        text = self.sm.get_secret_value(SecretId=self.secret_arn, VersionStage=stage)[
            "SecretString"
        ]
        loaded: dict[str, Any] = json.loads(text)
        return loaded

    def bootstrap_value(self) -> dict[str, Any]:
        """Return the value a stack first writes: the user, the region, the SMTP server."""
        value: dict[str, Any] = {"iam_user_name": self.user_name, "region": self.region}
        return value | {"host": self.ses.host, "port": self.ses.port}

    def user_tags(self) -> dict[str, str]:
        """Return the IAM user's tags (the function's records live there)."""
        tags = self.iam.list_user_tags(UserName=self.user_name)["Tags"]
        return {tag["Key"]: tag["Value"] for tag in tags}

    def access_keys(self) -> dict[str, str]:
        """Return the IAM user's access keys: id -> status."""
        response = self.iam.list_access_keys(UserName=self.user_name)
        return {k["AccessKeyId"]: k["Status"] for k in response["AccessKeyMetadata"]}

    def login(self, stage: str = "AWSCURRENT", *, timeout: float = 5.0) -> smtp.ProbeResult:
        """Log in to the SMTP server with the credentials of a version of the secret."""
        return login_with(self.value(stage), self, timeout=timeout)

    def secret_material(self) -> set[str]:
        """Every secret the world holds now: secret keys, their passwords, secret strings.

        Every account's users and secrets count (member accounts too), and the password of every
        region a secret's ``passwords`` map names.
        """
        drivers = [self.driver, *(member.driver for member in self.members)]
        secrets = [d._secret() for d in drivers]  # noqa: SLF001 - the world owns the drivers
        values = [
            v["secret_string"] for s in secrets for v in s.versions.values() if "secret_string" in v
        ]
        regions = {self.region} | {region for text in values for region in _regions_of(text)}
        found: set[str] = set(values)
        for account in {self.driver.account_id, *(m.account_id for m in self.members)}:
            for user in iam_backends[account]["global"].users.values():
                for key in user.access_keys:
                    found.add(key.secret_access_key)
                    found.update(derive_smtp_password(key.secret_access_key, r) for r in regions)
        return {item for item in found if item}


def login_with(value: Mapping[str, Any], world: World, *, timeout: float = 5.0) -> smtp.ProbeResult:
    """Log in to ``world``'s SMTP server with a secret value's credentials (any account's)."""
    secret = parse_secret(json.dumps(value), default_region=world.region)
    return smtp.probe_login(
        host=secret.host,
        port=secret.port,
        username=str(secret.access_key_id),
        password=str(secret.password),
        tls=secret.tls,
        timeout=timeout,
        ssl_context=world.ses.client_ssl_context(),
    )


def _regions_of(text: str) -> list[str]:
    """Return the regions of a secret value's ``passwords`` map (none for anything else)."""
    try:
        passwords = json.loads(text).get("passwords")
    except (ValueError, AttributeError):
        return []
    return [str(region) for region in passwords] if isinstance(passwords, dict) else []


@contextlib.contextmanager
def local_world(  # noqa: PLR0913 - every option is keyword-only and has a default
    *,
    region: str = "us-east-1",
    propagation_delay: float = 0.0,
    user_name: str = "ses-smtp-user",
    secret_name: str = "ses-smtp-rotator",  # noqa: S107 - a name, not a password
    bootstrap: Mapping[str, Any] | None = None,
    function_env: Mapping[str, str | None] | None = None,
    moto_server: bool = False,
    implicit_tls: bool = False,
    handler: Handler | None = None,
    environ: MutableMapping[str, str] | None = None,
    ses_options: Mapping[str, Any] | None = None,
) -> Iterator[World]:
    """Start a local world and yield it; everything is stopped and restored on exit.

    Parameters
    ----------
    bootstrap
        Extra keys for the secret's bootstrap value (host and port default to the SMTP server).
    function_env
        The rotation function's variables (``OLD_KEY_ACTION`` …); ``SECRET_ARN`` and
        ``SMTP_IAM_USER_NAME`` are bound to this world's secret and user unless given here.
    moto_server
        Serve AWS from moto's server on 127.0.0.1 via ``AWS_ENDPOINT_URL`` instead of in-process.
    ses_options
        More keyword arguments for :class:`SesSmtpServer` (``offer_starttls=False`` …).
    """
    env = os.environ if environ is None else environ
    base = {**FAKE_CREDENTIALS, "AWS_REGION": region, "AWS_DEFAULT_REGION": region}
    base |= {
        "POWERTOOLS_METRICS_NAMESPACE": "SesSmtpRotationLocal",
        "SMTP_TEST_TIMEOUT_SECONDS": "10",
    }
    with (
        patched_env(env, base),
        answers.on_loopback(),
        aws(moto_server=moto_server, environ=env) as endpoint_url,
        SesSmtpServer(
            region=region,
            propagation_delay=propagation_delay,
            implicit_tls=implicit_tls,
            **dict(ses_options or {}),
        ) as ses,
    ):
        session = boto3.session.Session(region_name=region)
        iam, sm = session.client("iam"), session.client("secretsmanager")
        value: dict[str, Any] = {
            "iam_user_name": user_name,
            "region": region,
            "host": ses.host,
            "port": ses.port,
        }
        if implicit_tls:
            value |= {"port": ses.tls_port, "tls_mode": "tls"}
        value |= dict(bootstrap or {})
        # A user as IamUserName names one: the function binds it at the first rotation.
        arn = apps.create_app(
            iam, sm, user_name=user_name, secret_name=secret_name, value=value, bound=False
        )
        fn_env: dict[str, str | None] = {"SECRET_ARN": arn, "SMTP_IAM_USER_NAME": user_name}
        fn_env |= dict(function_env or {})
        with (
            patched_env(env, {"SSL_CERT_FILE": str(ses.ca_file), **fn_env}),
            new_container_around(),
        ):
            driver = SecretsManagerDriver(
                secret_id=arn, handler=handler or _default_handler, region=region
            )
            driver.enable_rotation()
            service = rotation_service.serve(driver)
            try:
                yield World(
                    region=region,
                    user_name=user_name,
                    secret_arn=arn,
                    ses=ses,
                    driver=driver,
                    iam=iam,
                    sm=sm,
                    endpoint_url=endpoint_url,
                    env={k: v for k, v in fn_env.items() if v is not None},
                    service=service,
                )
            finally:
                # RotateSecret's runs end before the servers they talk to stop (bounded).
                rotation_service.withdraw(service)
