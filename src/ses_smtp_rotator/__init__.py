"""Amazon SES SMTP credentials: derive passwords, describe endpoints, parse the rotation secret."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ses_smtp_rotator.endpoints import TlsMode, region_of_host, smtp_host, tls_mode
from ses_smtp_rotator.exceptions import (
    InvalidEndpointError,
    InvalidRegionError,
    InvalidSecretError,
    SesSmtpCredentialsError,
    SmtpLoginError,
)
from ses_smtp_rotator.password import (
    derive_legacy_v2_password,
    derive_smtp_password,
    derive_smtp_passwords,
)
from ses_smtp_rotator.secret import SmtpSecret, parse_secret

try:
    __version__ = version("ses-smtp-rotator")
except PackageNotFoundError:  # pragma: no cover - imported from a source tree, not installed
    __version__ = "0+unknown"

__all__ = [
    "InvalidEndpointError",
    "InvalidRegionError",
    "InvalidSecretError",
    "SesSmtpCredentialsError",
    "SmtpLoginError",
    "SmtpSecret",
    "TlsMode",
    "__version__",
    "derive_legacy_v2_password",
    "derive_smtp_password",
    "derive_smtp_passwords",
    "parse_secret",
    "region_of_host",
    "smtp_host",
    "tls_mode",
]
