"""Reading and writing versions of the secret (GetSecretValue, PutSecretValue, stage moves).

A version's value never changes once put (PutSecretValue refuses other content for an existing
version id), so values read or written by version id are kept for the warm container's next
steps: Secrets Manager invokes the four steps back to back, and set, test and finish then read
the pending and current values without a GetSecretValue each. createSecret, where every rotation
begins, reads from the service again. Which version carries which stage is never cached: the
guard reads it afresh (DescribeSecret) for every step.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from botocore.exceptions import ClientError

from rotation_handler.exceptions import SecretValueError, StagingError
from rotation_handler.observability import logger
from rotation_handler.state import CURRENT, PENDING
from ses_smtp_rotator.endpoints import region_of_host
from ses_smtp_rotator.exceptions import InvalidSecretError
from ses_smtp_rotator.secret import SmtpSecret, parse_secret

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_secretsmanager.type_defs import GetSecretValueResponseTypeDef

    from rotation_handler.state import SecretState


# (secret ARN, version id) -> SecretString, newest last; a rotation touches three versions.
_VALUES: OrderedDict[tuple[str, str], str] = OrderedDict()
_MAX_CACHED: Final = 8


def _remember(secret_arn: str, version_id: str, text: str) -> None:
    _VALUES[secret_arn, version_id] = text
    _VALUES.move_to_end((secret_arn, version_id))
    while len(_VALUES) > _MAX_CACHED:
        _VALUES.popitem(last=False)


def raw(secret_arn: str, version_id: str | None) -> dict[str, object]:
    """Return the JSON object of a version this container read or wrote (``{}`` if none).

    Unlike the parsed value it has no defaults filled in: it tells which fields a version sets.
    """
    text = _VALUES.get((secret_arn, version_id)) if version_id else None
    try:
        loaded = json.loads(text) if text else {}
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def forget(secret_arn: str | None = None) -> None:
    """Drop the cached values of one secret's versions, or of every secret (a cold start)."""
    for key in [key for key in _VALUES if secret_arn in (None, key[0])]:
        del _VALUES[key]


def read(  # noqa: PLR0913 - keyword-only options after the client and the secret
    sm: SecretsManagerClient,
    secret_arn: str,
    *,
    stage: str,
    version_id: str | None = None,
    known_version: str | None = None,
    default_region: str,
) -> SmtpSecret | None:
    """Return the version carrying ``stage`` (and ``version_id``), or ``None`` if it has no value.

    ``known_version`` is the id the guard saw carrying ``stage``: when this container already
    read or wrote that version (or ``version_id``), its value is used without an AWS call.

    Raises
    ------
    SecretValueError
        The version has a value that does not follow the secret's schema.
    """
    cached_as = version_id or known_version
    text = _VALUES.get((secret_arn, cached_as)) if cached_as else None
    if text is None:
        response = _get(sm, secret_arn, stage=stage, version_id=version_id)
        if response is None or "SecretString" not in response:
            return None
        text = response["SecretString"]
        _remember(secret_arn, response["VersionId"], text)
    where = f"{stage} version of secret {secret_arn}"
    try:
        secret = parse_secret(text, default_region=default_region)
    except InvalidSecretError as err:
        msg = f"the {where} is unusable: {err}"
        raise SecretValueError(msg) from None
    check_region(secret, where)
    return secret


def read_labelled(
    sm: SecretsManagerClient, state: SecretState, stage: str, *, default_region: str
) -> SmtpSecret | None:
    """Read the version carrying ``stage`` where damage must not stop the caller.

    For a value that only names a key to retire or to keep: ``None`` when no version carries
    ``stage``, or when its value is unusable (logged; its key is then left alone).
    """
    version_id = state.version_with(stage)
    if version_id is None:
        return None
    try:
        return read(
            sm, state.arn, stage=stage, known_version=version_id, default_region=default_region
        )
    except SecretValueError:
        logger.warning("version is unusable; its key is left alone", extra={"stage": stage})
        return None


@dataclass(frozen=True, kw_only=True)
class Versions:
    """One secret's versions as a step reads them (what :class:`StepContext.versions` holds)."""

    sm: SecretsManagerClient
    state: SecretState
    default_region: str

    def read(self, stage: str, *, version_id: str | None = None) -> SmtpSecret | None:
        """Read a version of the secret (``None`` when it has no value yet); see :func:`read`."""
        return read(
            self.sm,
            self.state.arn,
            stage=stage,
            version_id=version_id,
            known_version=self.state.version_with(stage),
            default_region=self.default_region,
        )

    def read_labelled(self, stage: str) -> SmtpSecret | None:
        """Read a version whose damage must not stop the step; see :func:`read_labelled`."""
        return read_labelled(self.sm, self.state, stage, default_region=self.default_region)

    def read_pending(self, token: str) -> SmtpSecret:
        """Read the token's AWSPENDING version, which createSecret must have filled.

        Raises
        ------
        StagingError
            The version holds no credentials yet.
        """
        pending = self.read(PENDING, version_id=token)
        if pending is None or not pending.has_credentials:
            msg = f"the AWSPENDING version {token} has no credentials: run createSecret first"
            raise StagingError(msg)
        return pending


def check_region(secret: SmtpSecret, where: str) -> None:
    """Refuse a value whose host is an SES endpoint of another region than its password's.

    Raises
    ------
    SecretValueError
        The host names a region and it is not the value's ``region``.
    """
    host_region = region_of_host(secret.host)
    if host_region is not None and host_region != secret.region:
        msg = (
            f"the {where} sends to {secret.host} (region {host_region}) but asks for a password "
            f"for region {secret.region}: SES passwords work in one region; make them agree"
        )
        raise SecretValueError(msg)


def _get(
    sm: SecretsManagerClient, secret_arn: str, *, stage: str, version_id: str | None
) -> GetSecretValueResponseTypeDef | None:
    try:
        if version_id is None:
            return sm.get_secret_value(SecretId=secret_arn, VersionStage=stage)
        return sm.get_secret_value(SecretId=secret_arn, VersionId=version_id, VersionStage=stage)
    except ClientError as err:
        # Real Secrets Manager has no value for the AWSPENDING version until createSecret puts one.
        if err.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise


# How many versions a search for a key's owner reads at most (newest first).
MAX_VERSIONS_SEARCHED = 20


def key_holders(sm: SecretsManagerClient, secret_arn: str, *, skip: set[str]) -> dict[str, str]:
    """Map access key ids to the id of a version (deprecated ones included) whose value holds them.

    Used only when a key would otherwise count as foreign: a rotation cancelled by hand leaves its
    key in a version without staging labels, which DescribeSecret does not list. Versions in
    ``skip`` (already read) and values that are not this schema's JSON are passed over.
    """
    listing = sm.list_secret_version_ids(
        SecretId=secret_arn, IncludeDeprecated=True, MaxResults=MAX_VERSIONS_SEARCHED
    )
    newest = sorted(listing["Versions"], key=lambda v: v.get("CreatedDate", 0), reverse=True)
    holders: dict[str, str] = {}
    for version in newest[:MAX_VERSIONS_SEARCHED]:
        version_id = version["VersionId"]
        if version_id in skip:
            continue
        try:
            text = sm.get_secret_value(SecretId=secret_arn, VersionId=version_id).get(
                "SecretString"
            )
            value = json.loads(text or "null")
        except (ClientError, ValueError):
            continue
        key_id = value.get("access_key_id") if isinstance(value, dict) else None
        if isinstance(key_id, str):
            holders.setdefault(key_id, version_id)
    return holders


def put_pending(
    sm: SecretsManagerClient,
    secret_arn: str,
    *,
    token: str,
    secret: SmtpSecret,
    rotation_token: str | None = None,
) -> None:
    """Store ``secret`` as the value of the token's version, staged AWSPENDING.

    ``rotation_token`` is the rotation event's RotationToken: Secrets Manager requires it when
    the function acts through an assumed role or from another account, so it is passed whenever
    the event has one.
    """
    text = secret.to_json()
    if rotation_token:
        sm.put_secret_value(
            SecretId=secret_arn,
            ClientRequestToken=token,
            SecretString=text,
            VersionStages=[PENDING],
            RotationToken=rotation_token,
        )
    else:
        sm.put_secret_value(
            SecretId=secret_arn,
            ClientRequestToken=token,
            SecretString=text,
            VersionStages=[PENDING],
        )
    _remember(secret_arn, token, text)


def promote(
    sm: SecretsManagerClient, secret_arn: str, *, token: str, current_version: str | None
) -> None:
    """Move AWSCURRENT to the token's version (Secrets Manager moves AWSPREVIOUS itself).

    Raises
    ------
    StagingError
        There is no AWSCURRENT version to move the label from.
    """
    if current_version is None:
        msg = f"secret {secret_arn} has no AWSCURRENT version: put the bootstrap value first"
        raise StagingError(msg)
    sm.update_secret_version_stage(
        SecretId=secret_arn,
        VersionStage=CURRENT,
        MoveToVersionId=token,
        RemoveFromVersionId=current_version,
    )
