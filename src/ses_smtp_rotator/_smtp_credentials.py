"""What the secret's AWSCURRENT version gives an app, and the one-shot reader of one version.

:class:`SmtpCredentials` is what :func:`~ses_smtp_rotator.credentials.get_smtp_credentials` returns;
:func:`read_secret` is what one-shot commands (``check``, ``export``) call: one ``GetSecretValue``,
no cache, any staging label, boto3 only. Both fail the same way (see
:mod:`ses_smtp_rotator.credentials`, which re-exports both).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ses_smtp_rotator import _aws
from ses_smtp_rotator.exceptions import CredentialsNotReadyError, SecretUnavailableError
from ses_smtp_rotator.sdk_logging import quiet_sdk_loggers
from ses_smtp_rotator.secret import SmtpSecret, parse_secret

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from ses_smtp_rotator.endpoints import TlsMode


@dataclass(frozen=True, kw_only=True)
class SmtpCredentials:
    """Where to send and how to log in, read from the secret's AWSCURRENT version.

    ``repr`` and ``str`` never show the password.
    """

    host: str
    port: int
    username: str
    password: str
    region: str
    tls: TlsMode

    def __repr__(self) -> str:
        """Show the endpoint and the access key id, never the password (repr reaches logs)."""
        return (
            f"SmtpCredentials(host={self.host!r}, port={self.port!r}, username={self.username!r}, "
            f"region={self.region!r}, tls={self.tls.value!r}, password=***)"
        )

    __str__ = __repr__

    @classmethod
    def of(cls, secret: SmtpSecret, secret_id: str) -> SmtpCredentials:
        """Return the credentials ``secret`` holds.

        Raises
        ------
        CredentialsNotReadyError
            ``secret`` is the bootstrap value: the first rotation has not completed.
        """
        if secret.access_key_id is None or secret.password is None:
            msg = (
                f"secret {secret_id} holds no SMTP credentials yet (its bootstrap value): the "
                "first rotation has not completed; rotate it (aws secretsmanager rotate-secret) "
                "and retry"
            )
            raise CredentialsNotReadyError(msg)
        return cls(
            host=secret.host,
            port=secret.port,
            username=secret.access_key_id,
            password=secret.password,
            region=secret.region,
            tls=secret.tls,
        )


def read_secret(
    secret_id: str,
    *,
    version_stage: str = "AWSCURRENT",
    client: SecretsManagerClient | None = None,
) -> SmtpSecret:
    """Read one version of the secret now (no cache) and check that it holds credentials.

    Parameters
    ----------
    secret_id
        Name or ARN of the rotated secret.
    version_stage
        The staging label to read: ``AWSCURRENT``, or ``AWSPENDING``/``AWSPREVIOUS`` to check a
        rotation in progress or the one before.
    client
        A Secrets Manager client; default: one from the default AWS chain.

    Returns
    -------
    SmtpSecret
        The parsed version, with its credentials (``has_credentials`` is true).

    Raises
    ------
    SecretUnavailableError
        The version could not be read (the message names the secret and AWS's error code).
    InvalidSecretError
        The value does not follow the schema; the message names the secret and the field.
    CredentialsNotReadyError
        The version holds the bootstrap value: the first rotation has not completed.

    Examples
    --------
    >>> read_secret(os.environ["SES_SMTP_SECRET_ID"]).host  # doctest: +SKIP
    'email-smtp.eu-west-1.amazonaws.com'
    """
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - optional

    client = client if client is not None else _aws.client("secretsmanager")
    quiet_sdk_loggers()  # botocore at DEBUG would log the answer: the whole secret
    try:
        value = client.get_secret_value(SecretId=secret_id, VersionStage=version_stage)
    except (ClientError, BotoCoreError) as err:
        missing = _aws.error_code(err) == "ResourceNotFoundException"
        if missing and version_stage != "AWSCURRENT" and _exists(client, secret_id):
            msg = (
                f"secret {secret_id} has no version labelled {version_stage}"
                + (": no rotation is in progress" if version_stage == "AWSPENDING" else "")
                + f"; `ses-smtp-rotator status --secret-id {secret_id}` shows its versions"
            )
            raise SecretUnavailableError(msg) from None
        raise SecretUnavailableError(unavailable(secret_id, err)) from None
    secret = parse_secret(
        value.get("SecretString", ""), default_region=client.meta.region_name, secret_id=secret_id
    )
    SmtpCredentials.of(secret, secret_id)  # the same check, and error, as the apps' reader
    return secret


def _exists(client: SecretsManagerClient, secret_id: str) -> bool:
    """Whether the secret itself exists (a label can be missing from a secret that does)."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - optional

    try:
        client.describe_secret(SecretId=secret_id)
    except (ClientError, BotoCoreError):
        return False
    return True


def unavailable(secret_id: str, err: BaseException | None) -> str:
    fix = (
        "check its name, the region, and that this role may call secretsmanager:GetSecretValue "
        "on it (and kms:Decrypt on its key)"
    )
    if err is not None:
        fix = _aws.advice(err, fix)
    return f"cannot read secret {secret_id} ({_aws.error_code(err)}): {fix}"
