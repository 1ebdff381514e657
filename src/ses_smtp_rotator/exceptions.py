"""Errors raised by :mod:`ses_smtp_rotator`.

Every message says what happened and what to do about it, and never contains a secret access key,
an SMTP password or a secret value.
"""

from __future__ import annotations


class SesSmtpCredentialsError(Exception):
    """Base class of every error this library raises on purpose."""


class InvalidRegionError(SesSmtpCredentialsError, ValueError):
    """A region name is not in AWS's region format (for example ``eu-west-1``)."""


class RegionNotFoundError(SesSmtpCredentialsError, ValueError):
    """No AWS region given or configured: no ``--region``, ARN, SDK region or ``AWS_REGION``."""


class InvalidEndpointError(SesSmtpCredentialsError, ValueError):
    """An SMTP host or port cannot be used with Amazon SES."""


class InvalidSecretError(SesSmtpCredentialsError, ValueError):
    """A secret's value does not follow the schema (bad JSON, a missing or malformed field).

    Attributes
    ----------
    field
        The offending key of the secret's JSON object, or ``None`` when the whole value is unusable.
    secret_id
        The secret's name or ARN when the caller knew it.
    """

    def __init__(
        self, message: str, *, field: str | None = None, secret_id: str | None = None
    ) -> None:
        prefix = f"secret {secret_id}: " if secret_id else ""
        super().__init__(prefix + message)
        self.field = field
        self.secret_id = secret_id


class SmtpLoginError(SesSmtpCredentialsError):
    """An SMTP login did not succeed; the message says why and what to check."""


class StartTlsNotOfferedError(SmtpLoginError):
    """The SMTP server did not offer STARTTLS, so the client refused to send credentials."""


class CredentialsRejectedError(SmtpLoginError):
    """SMTP refused the secret's credentials (535) even after reading the secret again.

    The message carries the likely cause (:func:`ses_smtp_rotator.diagnose.diagnose`).
    """


class SecretUnavailableError(SesSmtpCredentialsError):
    """The secret could not be read from Secrets Manager (missing, access denied, network)."""


class CredentialsNotReadyError(SesSmtpCredentialsError):
    """The secret holds its bootstrap value: the first rotation has not completed yet."""


class UsageError(SesSmtpCredentialsError, ValueError):
    """The command line was used wrongly (a missing input, a secret on argv); exit code 2."""


class CheckFailedError(SesSmtpCredentialsError):
    """A check ran and failed (for example an SMTP login was refused); exit code 1."""
