"""Name the likely cause of ``535 Authentication Credentials Invalid``.

The checks run from the most certain to the least: the user name's shape, the key's status, the
password's shape and version, the region it was derived for (when the secret access key is known),
and the key's age. No message contains the password or the secret access key.
"""

from __future__ import annotations

import functools
import re
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from ses_smtp_rotator.endpoints import region_of_host
from ses_smtp_rotator.exceptions import InvalidRegionError
from ses_smtp_rotator.password import (
    V2_VERSION,
    V4_VERSION,
    derive_legacy_v2_password,
    derive_smtp_password,
    password_version,
)

if TYPE_CHECKING:
    from collections.abc import Callable

# How long a new IAM key may take to reach SES; AWS documents "a few minutes".
PROPAGATION_WINDOW = timedelta(minutes=5)
_ACCESS_KEY_ID_RE = re.compile(r"^AKIA[A-Z0-9]{16}$")
_SECRET_KEY_SHAPE_RE = re.compile(r"^[A-Za-z0-9/+]{40}$")
CHECKLIST = (
    "check that the user name is the access key id (AKIA...), the password was derived for the "
    "endpoint's region from that key's secret (`ses-smtp-rotator derive`), the key is Active "
    "and the IAM user may call ses:SendRawEmail"
)


class Cause(StrEnum):
    """Likely causes of a 535 from SES SMTP."""

    USER_NAME_NOT_ACCESS_KEY_ID = "user-name-not-access-key-id"
    TEMPORARY_CREDENTIALS = "temporary-credentials"
    RAW_SECRET_KEY = "raw-secret-key"  # noqa: S105 - a cause name, not a password # nosec B105
    LEGACY_V2_PASSWORD = "legacy-v2-password"  # noqa: S105 - a cause name, not a password # nosec B105
    WRONG_REGION = "wrong-region"
    PASSWORD_NOT_FROM_KEY = "password-not-from-key"  # noqa: S105 - a cause name, not a password # nosec B105
    KEY_INACTIVE = "key-inactive"
    KEY_TOO_NEW = "key-too-new"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class KeyInfo:
    """What IAM says about an access key (``ListAccessKeys``): its status and creation time.

    ``create_date`` may be naive (then it is read as UTC, as moto returns it) or aware.
    """

    access_key_id: str
    status: str
    create_date: datetime


@dataclass(frozen=True)
class Diagnosis:
    """The likely cause of a 535 and what to do; ``message`` never holds a secret."""

    cause: Cause
    message: str


@dataclass(frozen=True)
class _Facts:
    username: str
    password: str
    secret_access_key: str | None
    key_info: KeyInfo | None
    region: str | None
    now: datetime


def diagnose(  # noqa: PLR0913 - keyword-only facts, each optional except the credentials
    *,
    host: str,
    username: str,
    password: str,
    secret_access_key: str | None = None,
    key_info: KeyInfo | None = None,
    region: str | None = None,
    now: datetime | None = None,
) -> Diagnosis:
    """Return the likely cause of an SES SMTP 535 for these credentials.

    Parameters
    ----------
    host
        The SMTP host; its region (``email-smtp.<region>.amazonaws.com``) is the one the password
        must be derived for.
    username, password
        The credentials that were refused.
    secret_access_key
        The key's secret, when known: lets the diagnosis tell which region a password is for.
    key_info
        The key's status and creation time from IAM, when known.
    region
        The region the endpoint serves, for hosts that do not name it (VPC endpoints, tests).
    now
        The current time (aware, or naive UTC); default: now.

    Returns
    -------
    Diagnosis
        ``Cause.UNKNOWN`` with a checklist when no cause could be told.

    Examples
    --------
    >>> diagnose(host="email-smtp.eu-west-1.amazonaws.com", username="smtp-user",
    ...          password="x").cause
    <Cause.USER_NAME_NOT_ACCESS_KEY_ID: 'user-name-not-access-key-id'>
    """
    facts = _Facts(
        username=username.strip(),
        password=password,
        secret_access_key=secret_access_key,
        key_info=key_info,
        region=region or region_of_host(host),
        now=_aware(now or datetime.now(UTC)),
    )
    for check in _CHECKS:
        found = check(facts)
        if found is not None:
            return found
    hint = "" if secret_access_key else "; give the secret access key to check the region"
    return Diagnosis(Cause.UNKNOWN, f"no known cause found: {CHECKLIST}{hint}")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _check_username(facts: _Facts) -> Diagnosis | None:
    if facts.username.startswith("ASIA"):
        msg = (
            f"user name {facts.username} is a temporary (STS) access key id: SES SMTP refuses "
            "temporary credentials; create an IAM user access key (AKIA...)"
        )
        return Diagnosis(Cause.TEMPORARY_CREDENTIALS, msg)
    if not _ACCESS_KEY_ID_RE.fullmatch(facts.username):
        msg = (
            f"user name {facts.username!r} is not an access key id: the SMTP user name is the IAM "
            "access key id (AKIA followed by 16 letters and digits), not the IAM user name"
        )
        return Diagnosis(Cause.USER_NAME_NOT_ACCESS_KEY_ID, msg)
    return None


def _check_status(facts: _Facts) -> Diagnosis | None:
    if facts.key_info is not None and facts.key_info.status != "Active":
        msg = (
            f"access key {facts.username} is {facts.key_info.status}: activate it or use the "
            "current key from the secret"
        )
        return Diagnosis(Cause.KEY_INACTIVE, msg)
    return None


def _check_raw_key(facts: _Facts) -> Diagnosis | None:
    is_secret = facts.secret_access_key is not None and facts.password == facts.secret_access_key
    looks_like_key = (
        password_version(facts.password) is None
        and _SECRET_KEY_SHAPE_RE.fullmatch(facts.password) is not None
    )
    if is_secret or looks_like_key:
        which = "is" if is_secret else "looks like"
        msg = (
            f"the password {which} the raw secret access key: SES needs the SMTP password derived "
            "from it for the endpoint's region (`ses-smtp-rotator derive --region R`)"
        )
        return Diagnosis(Cause.RAW_SECRET_KEY, msg)
    return None


def _check_v2(facts: _Facts) -> Diagnosis | None:
    if password_version(facts.password) != V2_VERSION:
        return None
    ours = ""
    if facts.secret_access_key is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            legacy = derive_legacy_v2_password(facts.secret_access_key)
        ours = " of this key" if legacy == facts.password else " (of another key)"
    msg = (
        f"the password is a legacy version 2 SMTP password{ours}: derive a version 4 password "
        f"for {facts.region or 'the endpoint region'} instead"
    )
    return Diagnosis(Cause.LEGACY_V2_PASSWORD, msg)


def _check_region(facts: _Facts) -> Diagnosis | None:
    secret, region = facts.secret_access_key, facts.region
    if secret is None or password_version(facts.password) != V4_VERSION:
        return None
    if region is not None:
        try:
            if derive_smtp_password(secret, region) == facts.password:
                return None
        except InvalidRegionError:
            return None
    # Every region is tested before any cause is chosen: with the endpoint's region unknown (a VPC
    # endpoint or a test host), a password for another region would otherwise pass for a new key.
    matches = [r for r in ses_regions() if derive_smtp_password(secret, r) == facts.password]
    if matches and region is None:
        msg = (
            f"the password was derived for {matches[0]}, and the host name does not say which "
            f"region the endpoint serves: if it is not {matches[0]}, derive the password for the "
            f"endpoint's region (give --region to check){_age_note(facts)}"
        )
        return Diagnosis(Cause.WRONG_REGION, msg)
    if matches:
        msg = (
            f"the password was derived for {matches[0]}, but the endpoint is in {region}: derive "
            f"it for {region} (or send through {matches[0]}'s endpoint)"
        )
        return Diagnosis(Cause.WRONG_REGION, msg)
    msg = (
        f"the password is not derived from access key {facts.username}'s secret for "
        f"{region or 'any region'}{' or any known region' if region else ''}: it may belong to an "
        "older key; derive it again from the current key"
    )
    return Diagnosis(Cause.PASSWORD_NOT_FROM_KEY, msg)


def _age_note(facts: _Facts) -> str:
    """Say so when the key is also young enough to be still on its way to SES."""
    if facts.key_info is None:
        return ""
    age = facts.now - _aware(facts.key_info.create_date)
    if age >= PROPAGATION_WINDOW:
        return ""
    seconds = max(age.total_seconds(), 0)
    return f"; if it is, the key (created {seconds:.0f} s ago) may not have reached SES yet"


def _check_age(facts: _Facts) -> Diagnosis | None:
    if facts.key_info is None:
        return None
    age = facts.now - _aware(facts.key_info.create_date)
    if age < PROPAGATION_WINDOW:
        msg = (
            f"access key {facts.username} was created {max(age.total_seconds(), 0):.0f} s ago: "
            "new keys take a few minutes to reach SES; retry in a few minutes"
        )
        return Diagnosis(Cause.KEY_TOO_NEW, msg)
    return None


_CHECKS: tuple[Callable[[_Facts], Diagnosis | None], ...] = (
    _check_username,
    _check_status,
    _check_raw_key,
    _check_v2,
    _check_region,
    _check_age,
)


@functools.cache
def ses_regions() -> tuple[str, ...]:
    """Return the regions botocore knows (SES's endpoints and every partition's regions), offline.

    Examples
    --------
    >>> "eu-west-1" in ses_regions()
    True
    """
    import boto3  # noqa: PLC0415 - only the region search needs botocore's data
    import botocore.loaders  # noqa: PLC0415 - same reason

    session = boto3.session.Session()
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("ses", partition_name=partition))
    for partition in botocore.loaders.create_loader().load_data("partitions")["partitions"]:
        regions.update(partition["regions"])
    return tuple(sorted(r for r in regions if not r.endswith("-global")))
