"""The function's configuration: the one module that reads the environment.

Explicit argument beats environment variable beats default; a bad value raises
:class:`ConfigurationError` naming the variable. It imports nothing else of the function's, so
every module may read the settings (the error lives here for that reason; it is not a
:class:`~rotation_handler.exceptions.RotationError`: it stops the function, not one rotation).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from ses_smtp_rotator.contract import FLEET_TAG, MAX_TAG_KEY, MAX_TAG_VALUE, TAG_TEXT

if TYPE_CHECKING:
    from collections.abc import Mapping


class ConfigurationError(ValueError):
    """An environment variable of the function has a bad value; the message names it."""


class OldKeyAction(StrEnum):
    """What finishSecret does with the key that stops being AWSCURRENT."""

    DEACTIVATE = "deactivate"
    DELETE = "delete"
    KEEP = "keep"


MAILBOX_SIMULATOR: Final = "success@simulator.amazonses.com"
_REGION_RE: Final = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
# IAM role names: 1-64 of letters, digits and +=,.@_- (the role's path is not part of the name).
_ROLE_NAME_RE: Final = re.compile(r"^[A-Za-z0-9+=,.@_-]{1,64}$")
_HOST_RE: Final = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_MAX_PORT: Final = 65535
_DURATION_RE: Final = re.compile(r"^(?:0|([0-9]{1,6})([smhd]))$")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_GRACE_PERIOD: Final = 365 * 86400
_TRUE: Final = frozenset({"true", "1", "yes"})
_FALSE: Final = frozenset({"false", "0", "no"})
MAX_SMTP_TEST_TIMEOUT: Final = 840.0  # Lambda's 900 s limit less room for the other calls
DEFAULT_FLEET_TAG_KEY: Final = FLEET_TAG
# IAM's path syntax, below the root: "/" would put every user of the account in the fleet.
_USER_PATH_RE: Final = re.compile(r"^/[\x21-\x7E]*[\x21-\x2E\x30-\x7E]/$")
_MAX_USER_PATH: Final = 512
# Tag keys and values as Secrets Manager accepts them (ASCII subset); "aws:" keys are AWS's own.
_TAG_RE: Final = TAG_TEXT
_MAX_TAG_KEY: Final = MAX_TAG_KEY
_MAX_TAG_VALUE: Final = MAX_TAG_VALUE


@dataclass(frozen=True, kw_only=True)
class Fleet:
    """Fleet mode: any secret carrying the tag whose IAM user sits under the path."""

    user_path: str
    tag_key: str = DEFAULT_FLEET_TAG_KEY
    tag_value: str


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Configuration of the rotation function (see the README's environment table)."""

    region: str
    secret_arn: str | None = None
    iam_user_name: str | None = None
    smtp_test_timeout: float = 40.0
    smtp_attempt_timeout: float = 10.0
    old_key_action: OldKeyAction = OldKeyAction.DEACTIVATE
    store_secret_access_key: bool = True
    metrics_namespace: str = "SesSmtpRotation"
    smtp_test_sender: str | None = None
    smtp_test_recipient: str = MAILBOX_SIMULATOR
    # Where the credentials are for: when set, they win over the secret's own fields, so a stack
    # update changes them without CloudFormation rewriting the secret's value.
    ses_region: str | None = None
    smtp_host: str | None = None
    smtp_port: int | None = None
    # Seconds the old key stays Active after the new one is promoted; 0 = OLD_KEY_ACTION at once.
    old_key_grace_period: int = 0
    # Set (FLEET_USER_PATH): the function rotates any secret of the fleet instead of one.
    fleet: Fleet | None = None
    # The role assumed in a secret's account when it is not the function's own (None = refuse).
    cross_account_role_name: str | None = None
    # Regions whose passwords createSecret also derives into the secret's ``passwords`` map.
    extra_ses_regions: tuple[str, ...] = ()

    @property
    def binds_by_configuration(self) -> bool:
        """Whether the configuration names both the secret and the user (one-secret function)."""
        return bool(self.secret_arn and self.iam_user_name) and self.fleet is None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from environment variables.

        Raises
        ------
        ConfigurationError
            A variable has a value outside its allowed set; the message names the variable.

        Examples
        --------
        >>> Settings.from_env({"AWS_REGION": "eu-west-1"}).old_key_action
        <OldKeyAction.DEACTIVATE: 'deactivate'>
        """
        region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
        if not region:
            msg = "AWS_REGION is not set: the function needs its region (Lambda always sets it)"
            raise ConfigurationError(msg)
        return cls(
            region=region,
            secret_arn=environ.get("SECRET_ARN") or None,
            iam_user_name=environ.get("SMTP_IAM_USER_NAME") or None,
            smtp_test_timeout=_seconds(environ, "SMTP_TEST_TIMEOUT_SECONDS", 40.0),
            smtp_attempt_timeout=_seconds(environ, "SMTP_ATTEMPT_TIMEOUT_SECONDS", 10.0),
            old_key_action=_choice(environ, "OLD_KEY_ACTION", OldKeyAction.DEACTIVATE),
            store_secret_access_key=_flag(environ, "STORE_SECRET_ACCESS_KEY", default=True),
            metrics_namespace=environ.get("POWERTOOLS_METRICS_NAMESPACE") or "SesSmtpRotation",
            smtp_test_sender=_address(environ, "SMTP_TEST_SENDER"),
            smtp_test_recipient=_address(environ, "SMTP_TEST_RECIPIENT") or MAILBOX_SIMULATOR,
            ses_region=_matching(
                environ, "SES_REGION", _REGION_RE, "an AWS region such as eu-west-1"
            ),
            smtp_host=_matching(environ, "SMTP_HOST", _HOST_RE, "a host name"),
            smtp_port=_port(environ, "SMTP_PORT"),
            old_key_grace_period=_duration(environ, "OLD_KEY_GRACE_PERIOD"),
            fleet=_fleet(environ),
            cross_account_role_name=_matching(
                environ, "CROSS_ACCOUNT_ROLE_NAME", _ROLE_NAME_RE, "an IAM role name (no path)"
            ),
            extra_ses_regions=_regions(environ, "EXTRA_SES_REGIONS"),
        )


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw) if raw.isascii() else -1.0
    except ValueError:
        value = -1.0
    if not 0 < value <= MAX_SMTP_TEST_TIMEOUT:
        msg = f"{name} must be a number of seconds between 0 and {MAX_SMTP_TEST_TIMEOUT:.0f}"
        raise ConfigurationError(msg)
    return value


def _choice(environ: Mapping[str, str], name: str, default: OldKeyAction) -> OldKeyAction:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return OldKeyAction(raw.strip().lower())
    except ValueError:
        allowed = ", ".join(action.value for action in OldKeyAction)
        msg = f"{name} must be one of {allowed}; got {raw!r}"
        raise ConfigurationError(msg) from None


def _flag(environ: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = (environ.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    msg = f"{name} must be true or false; got {raw!r}"
    raise ConfigurationError(msg)


def _address(environ: Mapping[str, str], name: str) -> str | None:
    raw = (environ.get(name) or "").strip()
    if not raw:
        return None
    local, _, domain = raw.partition("@")
    if not local or "." not in domain or any(c.isspace() for c in raw):
        msg = f"{name} must be an email address such as {MAILBOX_SIMULATOR}"
        raise ConfigurationError(msg)
    return raw


def _matching(
    environ: Mapping[str, str], name: str, pattern: re.Pattern[str], what: str
) -> str | None:
    raw = (environ.get(name) or "").strip()
    if not raw:
        return None
    if not pattern.fullmatch(raw):
        msg = f"{name} must be {what}"
        raise ConfigurationError(msg)
    return raw


def _regions(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Parse a comma-separated list of regions (blanks ignored, duplicates once, order kept)."""
    items = [item.strip() for item in (environ.get(name) or "").split(",")]
    regions = tuple(dict.fromkeys(item for item in items if item))
    if not all(_REGION_RE.fullmatch(region) for region in regions):
        msg = f"{name} must be comma-separated AWS regions such as us-east-1,eu-central-1"
        raise ConfigurationError(msg)
    return regions


def _port(environ: Mapping[str, str], name: str) -> int | None:
    raw = (environ.get(name) or "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and 0 < int(raw) <= _MAX_PORT):
        msg = f"{name} must be a TCP port number between 1 and {_MAX_PORT}"
        raise ConfigurationError(msg)
    return int(raw)


def _duration(environ: Mapping[str, str], name: str) -> int:
    """Parse ``0``, ``90s``, ``30m``, ``24h`` or ``7d`` into seconds (unset means 0)."""
    raw = (environ.get(name) or "").strip()
    if not raw:
        return 0
    match = _DURATION_RE.fullmatch(raw)
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)] if match and match.group(1) else 0
    if match is None or seconds > MAX_GRACE_PERIOD:
        msg = f"{name} must be 0 or a duration such as 90s, 30m, 24h or 7d (at most 365d)"
        raise ConfigurationError(msg)
    return seconds


def _fleet(environ: Mapping[str, str]) -> Fleet | None:
    """Read fleet mode: FLEET_USER_PATH turns it on, FLEET_TAG_VALUE is then required."""
    path = (environ.get("FLEET_USER_PATH") or "").strip()
    key = (environ.get("FLEET_TAG_KEY") or "").strip()
    value = (environ.get("FLEET_TAG_VALUE") or "").strip()
    if not path:
        stray = [name for name, raw in (("FLEET_TAG_KEY", key), ("FLEET_TAG_VALUE", value)) if raw]
        if stray:
            msg = f"{' and '.join(stray)} is set but FLEET_USER_PATH is not: fleet mode needs both"
            raise ConfigurationError(msg)
        return None
    bound = [name for name in ("SECRET_ARN", "SMTP_IAM_USER_NAME") if environ.get(name)]
    if bound:
        msg = (
            f"FLEET_USER_PATH (fleet mode) cannot be combined with {' and '.join(bound)} "
            "(one secret): unset one or the other"
        )
        raise ConfigurationError(msg)
    if len(path) > _MAX_USER_PATH or not _USER_PATH_RE.fullmatch(path):
        msg = (
            "FLEET_USER_PATH must be an IAM path below the root that starts and ends with /, "
            "such as /ses-smtp/"
        )
        raise ConfigurationError(msg)
    key = key or DEFAULT_FLEET_TAG_KEY
    if len(key) > _MAX_TAG_KEY or not _TAG_RE.fullmatch(key) or key.lower().startswith("aws:"):
        msg = f"FLEET_TAG_KEY must be a tag key such as {DEFAULT_FLEET_TAG_KEY} (not aws:...)"
        raise ConfigurationError(msg)
    if not value:
        msg = "FLEET_TAG_VALUE is required in fleet mode (FLEET_USER_PATH): the fleet's name"
        raise ConfigurationError(msg)
    if len(value) > _MAX_TAG_VALUE or not _TAG_RE.fullmatch(value):
        msg = "FLEET_TAG_VALUE must be a tag value such as default (letters, digits, _.:/=+@- )"
        raise ConfigurationError(msg)
    return Fleet(user_path=path, tag_key=key, tag_value=value)
