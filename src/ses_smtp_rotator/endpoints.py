"""SES SMTP endpoints: the host of a region, the TLS mode of a port, region names.

Region names are checked by their format, not against a list, so a region AWS opens tomorrow works;
only ``derive`` also checks :data:`SES_REGIONS` (``--any-region`` passes it).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final

from ses_smtp_rotator.exceptions import InvalidEndpointError, InvalidRegionError

# AWS region format: a partition/geography prefix, one to three words, a number:
# us-east-1, eu-central-2, us-gov-west-1, us-isob-east-1, eusc-de-east-1, ap-southeast-7.
_REGION_RE = re.compile(r"^[a-z]{2,5}(?:-[a-z]+){1,3}-\d{1,2}$")

# The regions where SES has an SMTP endpoint (botocore's endpoint data for `ses`, aws and
# aws-us-gov partitions). Only `derive` checks a region against it, and `--any-region` passes it.
SES_REGIONS: Final = frozenset(
    {
        "af-south-1", "ap-east-2", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
        "ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
        "ap-southeast-4", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "ca-central-1",
        "ca-west-1", "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2",
        "eu-west-1", "eu-west-2", "eu-west-3", "il-central-1", "me-central-1", "me-south-1",
        "mx-central-1", "sa-east-1", "us-east-1", "us-east-2", "us-west-1", "us-west-2",
        "us-gov-east-1", "us-gov-west-1",
    }
)  # fmt: skip
# Regions with a documented FIPS SMTP endpoint (email-smtp-fips.<region>.amazonaws.com).
FIPS_REGIONS = frozenset({"us-east-1", "us-east-2", "us-west-1", "us-west-2", "us-gov-west-1"})

_HOST_RE = re.compile(r"^email-smtp(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com$")


class TlsMode(StrEnum):
    """How an SMTP connection is encrypted before AUTH."""

    STARTTLS = "starttls"
    IMPLICIT = "tls"


DEFAULT_PORT = 587
PORT_TLS_MODES: dict[int, TlsMode] = {
    587: TlsMode.STARTTLS,
    25: TlsMode.STARTTLS,
    2587: TlsMode.STARTTLS,
    465: TlsMode.IMPLICIT,
    2465: TlsMode.IMPLICIT,
}


def validate_region(region: str) -> str:
    """Return ``region`` if it is in AWS's region format.

    Raises
    ------
    InvalidRegionError
        The name is not a region name (for example ``us-east`` or ``US-EAST-1``).

    Examples
    --------
    >>> validate_region("eu-west-1")
    'eu-west-1'
    """
    if not isinstance(region, str) or not _REGION_RE.fullmatch(region):
        msg = f"{region!r} is not an AWS region name: expected a name such as 'us-east-1'"
        raise InvalidRegionError(msg)
    return region


def smtp_host(region: str, *, fips: bool = False) -> str:
    """Return the SES SMTP host of a region.

    Parameters
    ----------
    region
        AWS region name.
    fips
        Return the FIPS 140 endpoint; only the regions in :data:`FIPS_REGIONS` have one.

    Raises
    ------
    InvalidRegionError
        ``region`` is not a region name.
    InvalidEndpointError
        ``fips`` was asked for a region without a documented FIPS SMTP endpoint.

    Examples
    --------
    >>> smtp_host("eu-west-1")
    'email-smtp.eu-west-1.amazonaws.com'
    """
    validate_region(region)
    if not fips:
        return f"email-smtp.{region}.amazonaws.com"
    if region not in FIPS_REGIONS:
        msg = f"SES has no documented FIPS SMTP endpoint in {region}; known: {sorted(FIPS_REGIONS)}"
        raise InvalidEndpointError(msg)
    return f"email-smtp-fips.{region}.amazonaws.com"


def region_of_host(host: str) -> str | None:
    """Return the region of an SES SMTP host name, or ``None`` for any other host.

    Examples
    --------
    >>> region_of_host("email-smtp-fips.us-east-1.amazonaws.com")
    'us-east-1'
    >>> region_of_host("smtp.example.com") is None
    True
    """
    match = _HOST_RE.fullmatch(host.lower().rstrip("."))
    if match is None or not _REGION_RE.fullmatch(match["region"]):
        return None
    return match["region"]


def tls_mode(port: int) -> TlsMode:
    """Return how SES expects TLS on ``port``: STARTTLS (587, 25, 2587) or implicit TLS (465, 2465).

    Raises
    ------
    InvalidEndpointError
        SES does not listen on that port.

    Examples
    --------
    >>> tls_mode(465)
    <TlsMode.IMPLICIT: 'tls'>
    """
    try:
        return PORT_TLS_MODES[port]
    except (KeyError, TypeError):
        msg = (
            f"SES SMTP does not listen on port {port!r}: use 587, 25 or 2587 (STARTTLS) "
            "or 465 or 2465 (implicit TLS)"
        )
        raise InvalidEndpointError(msg) from None
