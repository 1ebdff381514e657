"""The checks of each field of a secret's value, as ``secret.parse_secret`` runs them.

Each check names the field and never echoes a value (a value may be a secret).
"""

from __future__ import annotations

import json
import re
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, NoReturn

from ses_smtp_rotator.endpoints import TlsMode, smtp_host, tls_mode, validate_region
from ses_smtp_rotator.exceptions import (
    InvalidEndpointError,
    InvalidRegionError,
    InvalidSecretError,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

# IAM user names: 1-64 characters of letters, digits and +=,.@_-
_USER_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$")
# IAM access key ids: 16-128 word characters (AKIA... for long-term keys).
_ACCESS_KEY_ID_RE = re.compile(r"^\w{16,128}$")
_PORT_LIMIT: Final = 65536
_PORT_RE = re.compile(r"[0-9]{1,5}", re.ASCII)
_MAX_HOST_LENGTH: Final = 253  # a DNS name's longest text form
# Objects and lists nest at most this deep in a secret's value (this schema uses 2 levels); deeper
# values are refused with a clear error instead of a RecursionError in the JSON parser or encoder.
MAX_DEPTH: Final = 32


def fail(message: str, field_name: str | None, secret_id: str | None) -> NoReturn:
    raise InvalidSecretError(message, field=field_name, secret_id=secret_id)


def load_object(text: str | bytes, secret_id: str | None) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except RecursionError:
        fail_nested(secret_id)
    except json.JSONDecodeError as err:
        # The JSON error text quotes the input, which may be a secret: keep only its position.
        msg = f"the value is not valid JSON (line {err.lineno}, column {err.colno})"
        raise InvalidSecretError(msg, secret_id=secret_id) from None
    except (TypeError, ValueError):
        msg = "the value is not valid JSON text: expected a JSON object"
        raise InvalidSecretError(msg, secret_id=secret_id) from None
    if not isinstance(data, dict):
        msg = f"the value is a JSON {type(data).__name__}, expected a JSON object"
        raise InvalidSecretError(msg, secret_id=secret_id)
    if depth(data) > MAX_DEPTH:
        fail_nested(secret_id)
    return data


def fail_nested(secret_id: str | None) -> NoReturn:
    msg = f"the value nests objects or lists more than {MAX_DEPTH} levels deep"
    raise InvalidSecretError(msg, secret_id=secret_id) from None


def depth(value: object) -> int:
    """Return how deep objects and lists nest in a loaded JSON value (iteratively, no recursion).

    Stops counting once past :data:`MAX_DEPTH`.
    """
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack and deepest <= MAX_DEPTH:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in item)
    return deepest


def user_name(data: Mapping[str, Any], secret_id: str | None) -> str:
    name = data.get("iam_user_name")
    if name is None:
        msg = "field 'iam_user_name' is missing: name the IAM user to rotate"
        fail(msg, "iam_user_name", secret_id)
    if not isinstance(name, str) or not _USER_NAME_RE.fullmatch(name):
        fail("field 'iam_user_name' is not a valid IAM user name", "iam_user_name", secret_id)
    return str(name)


def unset(value: object) -> bool:
    """Whether a configuration value means "use the default": absent, null or ``""``.

    The template's bootstrap value writes ``""`` for an empty ``SesRegion`` or ``SmtpHost``. Any
    other value (``0``, ``false``, a list, blanks) is an error, never replaced by the default.
    """
    return value is None or (isinstance(value, str) and not value)


def region(data: Mapping[str, Any], default: str | None, secret_id: str | None) -> str:
    region = data.get("region")
    if unset(region):
        region = default
    if region is None:
        fail("field 'region' is missing and no default region is configured", "region", secret_id)
    # The value is never quoted back: whatever sits in a secret's field may be a secret.
    msg = "field 'region' must be an AWS region name such as 'us-east-1'"
    if not isinstance(region, str):
        fail(msg, "region", secret_id)
    try:
        return validate_region(region)
    except InvalidRegionError:
        pass  # raised below, outside this block: its text (which quotes the value) is not chained
    fail(msg, "region", secret_id)


def host(data: Mapping[str, Any], region: str, secret_id: str | None) -> str:
    host = data.get("host")
    if unset(host):
        return smtp_host(region)
    if (
        not isinstance(host, str)
        or len(host) > _MAX_HOST_LENGTH
        or not host.isprintable()
        or any(c.isspace() for c in host)
    ):
        fail("field 'host' must be a host name", "host", secret_id)
    return host


def port(value: object, secret_id: str | None) -> int:
    # CloudFormation templating can turn a number into a string: accept ASCII digits only
    # (str.isdigit alone also takes fullwidth or Arabic-Indic digits, which int() reads), refuse
    # bools and floats.
    if isinstance(value, str) and _PORT_RE.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < _PORT_LIMIT:
        fail("field 'port' must be a TCP port number (1-65535) such as 587", "port", secret_id)
    return value


def tls(data: Mapping[str, Any], port: int, secret_id: str | None) -> tuple[TlsMode, bool]:
    raw = data.get("tls_mode")
    if raw is None:
        try:
            return tls_mode(port), False
        except InvalidEndpointError:
            # Not an SES port (a relay or a test server): SES-style STARTTLS unless told otherwise.
            return TlsMode.STARTTLS, False
    if isinstance(raw, str) and raw in {mode.value for mode in TlsMode}:
        return TlsMode(raw), True
    fail("field 'tls_mode' must be 'starttls' or 'tls'", "tls_mode", secret_id)


def optional_str(data: Mapping[str, Any], key: str, secret_id: str | None) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        fail(f"field '{key}' must be a non-empty string", key, secret_id)
    return str(value)


def access_key_id(data: Mapping[str, Any], secret_id: str | None) -> str | None:
    username = optional_str(data, "username", secret_id)
    key_id = optional_str(data, "access_key_id", secret_id)
    if username and key_id and username != key_id:
        msg = "fields 'username' and 'access_key_id' differ: both must be the access key id"
        fail(msg, "username", secret_id)
    key_id = key_id or username
    if key_id is not None and not _ACCESS_KEY_ID_RE.fullmatch(key_id):
        fail("field 'username' is not an IAM access key id (AKIA...)", "username", secret_id)
    return key_id


def passwords(data: Mapping[str, Any], secret_id: str | None) -> Mapping[str, str | None]:
    raw = data.get("passwords")
    if raw is None:
        return MappingProxyType({})
    if not isinstance(raw, dict):
        fail("field 'passwords' must be an object of region -> password", "passwords", secret_id)
    out: dict[str, str | None] = {}
    for region, password in raw.items():
        try:
            validate_region(region)
        except InvalidRegionError:
            valid = False  # the error quotes the key: fail outside this block, nothing chained
        else:
            valid = True
        if not valid:
            fail("field 'passwords' has a key that is not a region name", "passwords", secret_id)
        if password is not None and not isinstance(password, str):
            fail("field 'passwords' must map regions to strings", "passwords", secret_id)
        out[region] = password
    return MappingProxyType(out)
