from __future__ import annotations

import pytest

from ses_smtp_rotator import endpoints
from ses_smtp_rotator.endpoints import TlsMode
from ses_smtp_rotator.exceptions import InvalidEndpointError, InvalidRegionError


@pytest.mark.parametrize(
    ("region", "fips", "host"),
    [
        pytest.param("eu-west-1", False, "email-smtp.eu-west-1.amazonaws.com", id="standard"),
        pytest.param("us-east-1", True, "email-smtp-fips.us-east-1.amazonaws.com", id="fips"),
        pytest.param(
            "us-gov-west-1", True, "email-smtp-fips.us-gov-west-1.amazonaws.com", id="fips-gov"
        ),
    ],
)
def test_smtp_host(region: str, *, fips: bool, host: str) -> None:
    assert endpoints.smtp_host(region, fips=fips) == host
    assert endpoints.region_of_host(host) == region


def test_fips_host_in_a_region_without_one_is_refused() -> None:
    with pytest.raises(InvalidEndpointError, match="no documented FIPS SMTP endpoint"):
        endpoints.smtp_host("eu-west-1", fips=True)


def test_bad_region_is_refused_for_host() -> None:
    with pytest.raises(InvalidRegionError):
        endpoints.smtp_host("europe")


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("localhost", id="local"),
        pytest.param("vpce-0123.email-smtp.eu-west-1.vpce.amazonaws.com", id="vpc-endpoint"),
        pytest.param("email-smtp.not_a_region.amazonaws.com", id="bad-region-part"),
    ],
)
def test_region_of_other_hosts_is_unknown(host: str) -> None:
    assert endpoints.region_of_host(host) is None


@pytest.mark.parametrize(
    ("port", "mode"),
    [
        pytest.param(587, TlsMode.STARTTLS, id="587"),
        pytest.param(25, TlsMode.STARTTLS, id="25"),
        pytest.param(2587, TlsMode.STARTTLS, id="2587"),
        pytest.param(465, TlsMode.IMPLICIT, id="465"),
        pytest.param(2465, TlsMode.IMPLICIT, id="2465"),
    ],
)
def test_tls_mode_by_port(port: int, mode: TlsMode) -> None:
    assert endpoints.tls_mode(port) is mode


def test_port_ses_does_not_listen_on_is_refused() -> None:
    with pytest.raises(InvalidEndpointError, match="587, 25 or 2587"):
        endpoints.tls_mode(2525)
