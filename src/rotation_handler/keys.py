"""IAM access key housekeeping: list, classify, make room, create, activate, retire.

Which keys may this function touch?
- the key of AWSCURRENT: never (not deleted, not deactivated);
- the key of another version of the secret (AWSPREVIOUS): yes, it is the old key;
- a key no version references that an earlier attempt created and could not store (its run died
  before the key was in the secret): yes, it is an orphan, recognised by the intent
  (:mod:`rotation_handler.intents`);
- any other key ("foreign"): never; if it holds IAM's two-key limit, the step fails naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from botocore.exceptions import BotoCoreError, ClientError

from rotation_handler import intents
from rotation_handler.exceptions import AccessKeyError, ForeignKeyError
from rotation_handler.guard import CURRENT
from rotation_handler.settings import OldKeyAction

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from mypy_boto3_iam import IAMClient

MAX_KEYS: Final = 2


@dataclass(frozen=True, kw_only=True)
class AccessKey:
    """One IAM access key of the user (metadata only: IAM never returns the secret again)."""

    access_key_id: str
    active: bool
    created: datetime


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def list_keys(iam: IAMClient, user_name: str) -> list[AccessKey]:
    """Return the user's access keys.

    Raises
    ------
    AccessKeyError
        The IAM user does not exist.
    """
    try:
        response = iam.list_access_keys(UserName=user_name)
    except ClientError as err:
        if _code(err) == "NoSuchEntity":
            msg = (
                f"IAM user {user_name} does not exist: create it or fix iam_user_name in the secret"
            )
            raise AccessKeyError(msg) from err
        raise
    return [
        AccessKey(
            access_key_id=meta["AccessKeyId"],
            active=meta["Status"] == "Active",
            created=meta["CreateDate"].astimezone(UTC),
        )
        for meta in response["AccessKeyMetadata"]
    ]


def discard(iam: IAMClient, user_name: str, access_key_id: str) -> None:
    """Delete a key this attempt made but could not store, then close the intent."""
    _clean_up(iam, user_name, lambda: [access_key_id])


def _clean_up(iam: IAMClient, user_name: str, made: Callable[[], Iterable[str]]) -> None:
    """Delete the keys ``made`` names, then close the intent.

    Best effort: if finding or deleting them fails the intent stays open, and the next
    createSecret recognises the key as an orphan.
    """
    try:
        for access_key_id in made():
            delete(iam, user_name, access_key_id)
    except (ClientError, BotoCoreError, AccessKeyError):
        return
    intents.close(iam, user_name)


def make_room(  # noqa: PLR0913 - the options are keyword-only and each is a distinct input
    iam: IAMClient,
    user_name: str,
    *,
    keys: list[AccessKey],
    referenced: Mapping[str, str],
    intent: Callable[[], intents.Intent | None],
    token: str,
    staged: Iterable[str],
    holders: Callable[[], Mapping[str, str]],
) -> list[AccessKey]:
    """Delete our orphans, then free a slot if IAM's limit is reached; return the keys left.

    ``referenced`` maps key ids to the stage of the version that holds them; AWSCURRENT's key is
    never touched. ``intent`` is called only when a key no version references needs classifying;
    it vouches for at most one orphan (:meth:`intents.Intent.orphan`, with ``staged`` version ids).
    ``holders`` (every version's key, deprecated versions included) is searched only when no
    known old key can make room, before a key is declared foreign.

    Raises
    ------
    ForeignKeyError
        The limit is held by keys this function did not create and no version references.
    """
    unreferenced = [key for key in keys if key.access_key_id not in referenced]
    recorded = intent() if unreferenced else None
    orphan = recorded.orphan(keys, token=token, staged=staged) if recorded else None
    orphans = [orphan] if orphan in unreferenced else []
    for key in orphans:
        delete(iam, user_name, key.access_key_id)
    left = [key for key in keys if key not in orphans]
    if len(left) < MAX_KEYS:
        return left
    # Only a key that another version of the secret holds (AWSPREVIOUS) may make room.
    old = [key for key in left if referenced.get(key.access_key_id) not in (None, CURRENT)]
    if not old:
        found = holders()
        referenced = {**dict.fromkeys(found, "deprecated version"), **referenced}
        old = [key for key in left if referenced.get(key.access_key_id) not in (None, CURRENT)]
    if not old:
        raise ForeignKeyError(_foreign_message(user_name, left, referenced))
    delete(iam, user_name, old[0].access_key_id)
    return [key for key in left if key != old[0]]


def _foreign_message(user_name: str, keys: list[AccessKey], referenced: Mapping[str, str]) -> str:
    foreign = [key.access_key_id for key in keys if key.access_key_id not in referenced]
    names = ", ".join(foreign)
    return (
        f"IAM user {user_name} already has {MAX_KEYS} access keys and {names} is referenced by "
        "no version of the secret and this function has no record of creating it, so it is left "
        "alone. "
        f"Delete it if nothing uses it (aws iam delete-access-key --user-name {user_name} "
        f"--access-key-id {foreign[0] if foreign else '...'}), or adopt it by putting it and its "
        "SMTP password into the secret as AWSCURRENT; then rotate again."
    )


def create(iam: IAMClient, user_name: str, *, existing: Iterable[str]) -> tuple[str, str]:
    """Create an access key and return ``(access_key_id, secret_access_key)``.

    If the call fails, no key of this attempt is left behind: an error answer means IAM made
    none; without an answer (connection lost), a key not in ``existing`` that appeared meanwhile
    is the one this call made, and it is deleted. Either way the intent is closed.

    Raises
    ------
    AccessKeyError
        IAM refused because the user already has two keys (someone added one meanwhile).
    """
    try:
        key = iam.create_access_key(UserName=user_name)["AccessKey"]
    except ClientError as err:
        intents.close(iam, user_name)  # IAM answered with an error: it made no key
        if _code(err) == "LimitExceeded":
            msg = (
                f"IAM user {user_name} reached the limit of {MAX_KEYS} access keys meanwhile: "
                "Secrets Manager will retry; if it fails again, the new key is named"
            )
            raise AccessKeyError(msg) from err
        raise
    except BotoCoreError:
        before = frozenset(existing)
        # No answer: a key that appeared since the attempt listed the keys is the one it made.
        _clean_up(
            iam,
            user_name,
            lambda: [
                k.access_key_id for k in list_keys(iam, user_name) if k.access_key_id not in before
            ],
        )
        raise
    return key["AccessKeyId"], key["SecretAccessKey"]


def delete(iam: IAMClient, user_name: str, access_key_id: str) -> None:
    """Delete a key; a key already gone counts as deleted."""
    try:
        iam.delete_access_key(UserName=user_name, AccessKeyId=access_key_id)
    except ClientError as err:
        if _code(err) != "NoSuchEntity":
            raise


def activate(iam: IAMClient, user_name: str, access_key_id: str) -> None:
    """Set a key Active."""
    iam.update_access_key(UserName=user_name, AccessKeyId=access_key_id, Status="Active")


def retire(iam: IAMClient, user_name: str, access_key_id: str, action: OldKeyAction) -> bool:
    """Apply the old-key policy to a key that is no longer AWSCURRENT's; return whether IAM changed.

    A key that no longer exists counts as retired.
    """
    if action is OldKeyAction.KEEP:
        return False
    if action is OldKeyAction.DELETE:
        delete(iam, user_name, access_key_id)
        return True
    try:
        iam.update_access_key(UserName=user_name, AccessKeyId=access_key_id, Status="Inactive")
    except ClientError as err:
        if _code(err) != "NoSuchEntity":
            raise
        return False
    return True


def now_utc() -> datetime:
    """Return the current time, timezone-aware (IAM's CreateDate is UTC)."""
    return datetime.now(tz=UTC)
