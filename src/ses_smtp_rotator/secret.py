"""The secret's JSON schema (version 1): parse, validate, derive and serialise.

The rotation function owns the credential keys (``username``, ``password``, ``access_key_id``,
``secret_access_key``, ``passwords``); it copies the configuration keys (``iam_user_name``,
``region``, ``host``, ``port``, ``tls_mode``) and every key it does not know from one version to
the next. Error messages name the field and never echo a value: a value may be a secret.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from ses_smtp_rotator import _secret_fields as _fields
from ses_smtp_rotator.endpoints import (
    DEFAULT_PORT,
    TlsMode,
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
    data = _fields.load_object(text, secret_id)
    region = _fields.region(data, default_region, secret_id)
    host = _fields.host(data, region, secret_id)
    port = _fields.port(data.get("port", DEFAULT_PORT), secret_id)
    tls, tls_explicit = _fields.tls(data, port, secret_id)
    key_id = _fields.access_key_id(data, secret_id)
    password = _fields.optional_str(data, "password", secret_id)
    if key_id and not password:
        _fields.fail("field 'password' is missing while 'username' is set", "password", secret_id)
    return SmtpSecret(
        iam_user_name=_fields.user_name(data, secret_id),
        region=region,
        host=host,
        port=port,
        tls=tls,
        tls_explicit=tls_explicit,
        access_key_id=key_id,
        password=password,
        secret_access_key=_fields.optional_str(data, "secret_access_key", secret_id),
        passwords=_fields.passwords(data, secret_id),
        extra=MappingProxyType(
            {k: v for k, v in data.items() if k not in CONFIG_KEYS + CREDENTIAL_KEYS}
        ),
    )
