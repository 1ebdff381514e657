"""The secret's JSON schema (version 1): parse, validate, derive and serialise.

The rotation function owns the credential keys (``username``, ``password``, ``access_key_id``,
``secret_access_key``, ``passwords``); it copies the configuration keys (``iam_user_name``,
``region``, ``host``, ``port``, ``tls_mode``) and every key it does not know from one version to
the next. Error messages name the field and never echo a value: a value may be a secret.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, NoReturn

from ses_smtp_rotator.endpoints import (
    DEFAULT_PORT,
    TlsMode,
    smtp_host,
    tls_mode,
    validate_region,
)
from ses_smtp_rotator.exceptions import (
    InvalidEndpointError,
    InvalidRegionError,
    InvalidSecretError,
)
from ses_smtp_rotator.password import derive_smtp_password

if TYPE_CHECKING:
    from collections.abc import Mapping

CONFIG_KEYS: Final = ("iam_user_name", "region", "host", "port", "tls_mode")
CREDENTIAL_KEYS: Final = (
    "username",
    "password",
    "access_key_id",
    "secret_access_key",
    "passwords",
)
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
_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, kw_only=True)
class SmtpSecret:
    """One version of the secret: where to send, and (after a rotation) the credentials.

    ``region``, ``host``, ``port`` and ``tls`` are always resolved (defaults applied).
    ``passwords`` holds the extra regions' passwords; ``extra`` every key this schema does not own.
    """

    iam_user_name: str
    region: str
    host: str
    port: int
    tls: TlsMode
    tls_explicit: bool = False
    access_key_id: str | None = None
    password: str | None = None
    secret_access_key: str | None = None
    passwords: Mapping[str, str | None] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def has_credentials(self) -> bool:
        """Whether this version holds an access key id and a password (not a bootstrap value)."""
        return bool(self.access_key_id and self.password)

    def with_access_key(
        self, access_key_id: str, secret_access_key: str, *, store_secret_access_key: bool = True
    ) -> SmtpSecret:
        """Return a copy holding a new access key and the passwords derived from it.

        The password is derived for ``region`` and for every region already in ``passwords``;
        configuration and unknown keys are kept as they are.

        Examples
        --------
        >>> s = parse_secret('{"iam_user_name": "smtp", "region": "eu-west-1"}')
        >>> s.with_access_key("AKIAEXAMPLE000000001", "k" * 40).has_credentials
        True
        """
        return replace(
            self,
            access_key_id=access_key_id,
            password=derive_smtp_password(secret_access_key, self.region),
            secret_access_key=secret_access_key if store_secret_access_key else None,
            passwords={
                region: derive_smtp_password(secret_access_key, region) for region in self.passwords
            },
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON object of this version (configuration, credentials, unknown keys)."""
        out: dict[str, Any] = {
            "iam_user_name": self.iam_user_name,
            "region": self.region,
            "host": self.host,
            "port": self.port,
        }
        if self.tls_explicit:
            out["tls_mode"] = self.tls.value
        if self.access_key_id is not None:
            out["username"] = self.access_key_id
            out["password"] = self.password
            out["access_key_id"] = self.access_key_id
        if self.secret_access_key is not None:
            out["secret_access_key"] = self.secret_access_key
        if self.passwords:
            out["passwords"] = dict(self.passwords)
        out.update({k: v for k, v in self.extra.items() if k not in out})
        return out

    def to_json(self) -> str:
        """Serialise to the JSON string stored in Secrets Manager."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    def __repr__(self) -> str:
        """Show where the credentials are for, never the credentials (repr reaches logs)."""
        return (
            f"SmtpSecret(iam_user_name={self.iam_user_name!r}, region={self.region!r}, "
            f"host={self.host!r}, port={self.port!r}, access_key_id={self.access_key_id!r})"
        )

    __str__ = __repr__


def parse_secret(
    text: str | bytes,
    *,
    default_region: str | None = None,
    secret_id: str | None = None,
) -> SmtpSecret:
    """Parse and validate a secret's value.

    Parameters
    ----------
    text
        The SecretString: a JSON object with at least ``iam_user_name``.
    default_region
        Region used when the secret has none (the rotation function passes its own region).
    secret_id
        Name or ARN of the secret, only used to make error messages say which secret.

    Returns
    -------
    SmtpSecret
        The version with defaults applied and unknown keys kept in ``extra``.

    Raises
    ------
    InvalidSecretError
        The value is not a JSON object or a field is missing or malformed; ``field`` says which.

    Examples
    --------
    >>> parse_secret('{"iam_user_name": "ses-smtp", "region": "eu-west-1"}').host
    'email-smtp.eu-west-1.amazonaws.com'
    """
    data = _load_object(text, secret_id)
    region = _region(data, default_region, secret_id)
    host = _host(data, region, secret_id)
    port = _port(data.get("port", DEFAULT_PORT), secret_id)
    tls, tls_explicit = _tls(data, port, secret_id)
    key_id = _access_key_id(data, secret_id)
    password = _optional_str(data, "password", secret_id)
    if key_id and not password:
        _fail("field 'password' is missing while 'username' is set", "password", secret_id)
    return SmtpSecret(
        iam_user_name=_user_name(data, secret_id),
        region=region,
        host=host,
        port=port,
        tls=tls,
        tls_explicit=tls_explicit,
        access_key_id=key_id,
        password=password,
        secret_access_key=_optional_str(data, "secret_access_key", secret_id),
        passwords=_passwords(data, secret_id),
        extra=MappingProxyType(
            {k: v for k, v in data.items() if k not in CONFIG_KEYS + CREDENTIAL_KEYS}
        ),
    )


def _fail(message: str, field_name: str | None, secret_id: str | None) -> NoReturn:
    raise InvalidSecretError(message, field=field_name, secret_id=secret_id)


def _load_object(text: str | bytes, secret_id: str | None) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except RecursionError:
        _fail_nested(secret_id)
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
    if _depth(data) > MAX_DEPTH:
        _fail_nested(secret_id)
    return data


def _fail_nested(secret_id: str | None) -> NoReturn:
    msg = f"the value nests objects or lists more than {MAX_DEPTH} levels deep"
    raise InvalidSecretError(msg, secret_id=secret_id) from None


def _depth(value: object) -> int:
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


def _user_name(data: Mapping[str, Any], secret_id: str | None) -> str:
    name = data.get("iam_user_name")
    if name is None:
        msg = "field 'iam_user_name' is missing: name the IAM user to rotate"
        _fail(msg, "iam_user_name", secret_id)
    if not isinstance(name, str) or not _USER_NAME_RE.fullmatch(name):
        _fail("field 'iam_user_name' is not a valid IAM user name", "iam_user_name", secret_id)
    return str(name)


def _unset(value: object) -> bool:
    """Whether a configuration value means "use the default": absent, null or ``""``.

    The template's bootstrap value writes ``""`` for an empty ``SesRegion`` or ``SmtpHost``. Any
    other value (``0``, ``false``, a list, blanks) is an error, never replaced by the default.
    """
    return value is None or (isinstance(value, str) and not value)


def _region(data: Mapping[str, Any], default: str | None, secret_id: str | None) -> str:
    region = data.get("region")
    if _unset(region):
        region = default
    if region is None:
        _fail("field 'region' is missing and no default region is configured", "region", secret_id)
    # The value is never quoted back: whatever sits in a secret's field may be a secret.
    msg = "field 'region' must be an AWS region name such as 'us-east-1'"
    if not isinstance(region, str):
        _fail(msg, "region", secret_id)
    try:
        return validate_region(region)
    except InvalidRegionError:
        pass  # raised below, outside this block: its text (which quotes the value) is not chained
    _fail(msg, "region", secret_id)


def _host(data: Mapping[str, Any], region: str, secret_id: str | None) -> str:
    host = data.get("host")
    if _unset(host):
        return smtp_host(region)
    if (
        not isinstance(host, str)
        or len(host) > _MAX_HOST_LENGTH
        or not host.isprintable()
        or any(c.isspace() for c in host)
    ):
        _fail("field 'host' must be a host name", "host", secret_id)
    return host


def _port(value: object, secret_id: str | None) -> int:
    # CloudFormation templating can turn a number into a string: accept ASCII digits only
    # (str.isdigit alone also takes fullwidth or Arabic-Indic digits, which int() reads), refuse
    # bools and floats.
    if isinstance(value, str) and _PORT_RE.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < _PORT_LIMIT:
        _fail("field 'port' must be a TCP port number (1-65535) such as 587", "port", secret_id)
    return value


def _tls(data: Mapping[str, Any], port: int, secret_id: str | None) -> tuple[TlsMode, bool]:
    raw = data.get("tls_mode")
    if raw is None:
        try:
            return tls_mode(port), False
        except InvalidEndpointError:
            # Not an SES port (a relay or a test server): SES-style STARTTLS unless told otherwise.
            return TlsMode.STARTTLS, False
    if isinstance(raw, str) and raw in {mode.value for mode in TlsMode}:
        return TlsMode(raw), True
    _fail("field 'tls_mode' must be 'starttls' or 'tls'", "tls_mode", secret_id)


def _optional_str(data: Mapping[str, Any], key: str, secret_id: str | None) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        _fail(f"field '{key}' must be a non-empty string", key, secret_id)
    return str(value)


def _access_key_id(data: Mapping[str, Any], secret_id: str | None) -> str | None:
    username = _optional_str(data, "username", secret_id)
    key_id = _optional_str(data, "access_key_id", secret_id)
    if username and key_id and username != key_id:
        msg = "fields 'username' and 'access_key_id' differ: both must be the access key id"
        _fail(msg, "username", secret_id)
    key_id = key_id or username
    if key_id is not None and not _ACCESS_KEY_ID_RE.fullmatch(key_id):
        _fail("field 'username' is not an IAM access key id (AKIA...)", "username", secret_id)
    return key_id


def _passwords(data: Mapping[str, Any], secret_id: str | None) -> Mapping[str, str | None]:
    raw = data.get("passwords")
    if raw is None:
        return _EMPTY
    if not isinstance(raw, dict):
        _fail("field 'passwords' must be an object of region -> password", "passwords", secret_id)
    out: dict[str, str | None] = {}
    for region, password in raw.items():
        try:
            validate_region(region)
        except InvalidRegionError:
            valid = False  # the error quotes the key: fail outside this block, nothing chained
        else:
            valid = True
        if not valid:
            _fail("field 'passwords' has a key that is not a region name", "passwords", secret_id)
        if password is not None and not isinstance(password, str):
            _fail("field 'passwords' must map regions to strings", "passwords", secret_id)
        out[region] = password
    return MappingProxyType(out)
