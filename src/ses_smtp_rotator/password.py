"""SES SMTP passwords derived from an IAM secret access key.

The SMTP user name is the access key id; the password is an HMAC chain over the secret access key.
Version 4 passwords are bound to one region (AWS Signature Version 4 key derivation with a fixed
date); version 2 passwords (before January 2019) work in every region and are deprecated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import warnings

from ses_smtp_rotator.endpoints import validate_region

# Fixed inputs of the derivation, as documented by Amazon SES. They are not a date or a choice.
_V4_DATE = "11111111"
_V4_SERVICE = "ses"
_V4_TERMINAL = "aws4_request"
_MESSAGE = "SendRawEmail"
V4_VERSION = 0x04
V2_VERSION = 0x02


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def _require_key(secret_access_key: str) -> None:
    if not isinstance(secret_access_key, str) or not secret_access_key.strip():
        msg = "the secret access key is empty: pass the IAM user's secret access key"
        raise ValueError(msg)


def derive_smtp_password(secret_access_key: str, region: str) -> str:
    """Derive the SES SMTP password (version 4) of a secret access key for one region.

    Parameters
    ----------
    secret_access_key
        The IAM user's secret access key (not a temporary STS key: SES refuses those).
    region
        The AWS region whose SES SMTP endpoint the password is for, for example ``eu-west-1``.

    Returns
    -------
    str
        The base64 SMTP password; it logs in only to that region's SES SMTP endpoint.

    Raises
    ------
    InvalidRegionError
        ``region`` is not in AWS's region format.
    ValueError
        ``secret_access_key`` is empty.

    Examples
    --------
    >>> derive_smtp_password("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1")
    'BLBM/9hSUELfq8Gw+rU1YcBjkOxGbhT2XG763xVLGWL9'
    """
    _require_key(secret_access_key)
    region = validate_region(region)
    signature = _hmac(("AWS4" + secret_access_key).encode("utf-8"), _V4_DATE)
    for part in (region, _V4_SERVICE, _V4_TERMINAL, _MESSAGE):
        signature = _hmac(signature, part)
    return base64.b64encode(bytes([V4_VERSION]) + signature).decode("ascii")


def derive_smtp_passwords(secret_access_key: str, regions: list[str]) -> dict[str, str]:
    """Derive one version 4 password per region, keyed by region (duplicates collapse).

    Examples
    --------
    >>> sorted(derive_smtp_passwords("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ["eu-west-1"]))
    ['eu-west-1']
    """
    return {region: derive_smtp_password(secret_access_key, region) for region in regions}


def _legacy_v2(secret_access_key: str) -> str:
    _require_key(secret_access_key)
    signature = _hmac(secret_access_key.encode("utf-8"), _MESSAGE)
    return base64.b64encode(bytes([V2_VERSION]) + signature).decode("ascii")


def derive_legacy_v2_password(secret_access_key: str) -> str:
    """Derive the legacy (version 2, pre-2019) SES SMTP password. Deprecated.

    Version 2 passwords are not bound to a region. AWS asks for them to be replaced by version 4
    passwords; this function exists to recognise and migrate old credentials.

    Raises
    ------
    ValueError
        ``secret_access_key`` is empty.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", DeprecationWarning)
    ...     derive_legacy_v2_password("public+vector+key/for+docs")
    'AibxEnOVHl6KQTPJgBoMNDUMR8g3xd53v72YgDRuFBsm'
    """
    warnings.warn(
        "version 2 SES SMTP passwords are deprecated: use derive_smtp_password(key, region)",
        DeprecationWarning,
        stacklevel=2,
    )
    return _legacy_v2(secret_access_key)


def password_version(password: str) -> int | None:
    """Return the version byte (4 or 2) of a derived SMTP password, or ``None`` if it is not one.

    Examples
    --------
    >>> password_version("BLBM/9hSUELfq8Gw+rU1YcBjkOxGbhT2XG763xVLGWL9")
    4
    """
    try:
        raw = base64.b64decode(password, validate=True)
    except ValueError:
        return None
    # A derived password is one version byte followed by a SHA-256 HMAC (32 bytes).
    if len(raw) != 1 + hashlib.sha256().digest_size or raw[0] not in (V4_VERSION, V2_VERSION):
        return None
    return raw[0]
