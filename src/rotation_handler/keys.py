"""IAM access key housekeeping: list, classify, make room, create, activate, retire.

Which keys may this function touch?
- the key of AWSCURRENT: never (not deleted, not deactivated);
- the key of another version of the secret (AWSPREVIOUS): yes, it is the old key;
- a key no version references that an earlier attempt created and could not store (its run died
  before the key was in the secret): yes, it is an orphan;
- any other key ("foreign"): never; if it holds IAM's two-key limit, the step fails naming it.

"Created by this function" is recorded before CreateAccessKey in a tag on the IAM user (the
*intent*): which rotation (a digest of its token), when the attempt started, when its Lambda run
ends at the latest, and which keys existed then. An attempt that fails with an error it can
handle cleans up before it raises: it deletes the key it made (or finds no key was made) and
*closes* the intent, which then vouches for nothing, so a key made by hand before the retry is
foreign, never "ours". Only a run that died without running its error path (Lambda timeout, a
crash, a failed clean-up) leaves the intent open. One attempt creates one key, so an open intent
vouches for at most one: the only key created during that run and absent from the list. It
speaks for the retry of the same rotation, and for a later rotation once its own was abandoned
(cancelled: no version with its token carries a staging label any more). An intent of a rotation
that is still labelled (it stored its key, or is still being retried) vouches for nothing else.
IAM has no tags on access keys, so the user tag is the only place that survives a crash.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from botocore.exceptions import BotoCoreError, ClientError

from rotation_handler.exceptions import AccessKeyError, ForeignKeyError
from rotation_handler.guard import CURRENT
from rotation_handler.settings import OldKeyAction

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from mypy_boto3_iam import IAMClient

INTENT_TAG: Final = "ses-smtp-rotation:intent"
# The tag value of an intent whose attempt cleaned up after itself: it vouches for no key.
CLOSED_INTENT: Final = "closed"
MAX_KEYS: Final = 2
# A key created by an attempt appears before its Lambda run ends, at most 900 s (Lambda's limit)
# after the intent was recorded; the skew allows for the Lambda clock and IAM's clock
# disagreeing a little.
MAX_RUN: Final = timedelta(seconds=900)
_SKEW: Final = timedelta(seconds=60)


@dataclass(frozen=True, kw_only=True)
class AccessKey:
    """One IAM access key of the user (metadata only: IAM never returns the secret again)."""

    access_key_id: str
    active: bool
    created: datetime


@dataclass(frozen=True, kw_only=True)
class Intent:
    """The record, written before CreateAccessKey, that lets a later attempt recognise an orphan."""

    token_digest: str
    started_at: datetime
    ends_by: datetime
    existing: frozenset[str]

    def orphan(
        self, keys: Iterable[AccessKey], *, token: str, staged: Iterable[str]
    ) -> AccessKey | None:
        """Return the key this intent's run created, if an attempt of ``token`` may call it ours.

        ``staged`` are the ids of the versions that carry a staging label (a version id is its
        rotation's token). ``None`` when the intent belongs to another rotation that is still
        labelled, or when no key, or more than one, was created during the run and is absent
        from its list (two cannot be told apart from a key made by hand).
        """
        if self.token_digest != token_digest(token) and any(
            token_digest(version) == self.token_digest for version in staged
        ):
            return None
        made = [
            key
            for key in keys
            if key.access_key_id not in self.existing
            and self.started_at - _SKEW <= key.created <= self.ends_by + _SKEW
        ]
        return made[0] if len(made) == 1 else None

    def encode(self) -> str:
        """Tag value: ``v2 <digest> <start> <end> <key id> ...`` (tag values allow no commas)."""
        stamps = [str(int(moment.timestamp())) for moment in (self.started_at, self.ends_by)]
        return " ".join(["v2", self.token_digest, *stamps, *sorted(self.existing)])

    @classmethod
    def decode(cls, value: str) -> Intent | None:
        """Parse a tag value; ``None`` for anything this version did not write."""
        parts = value.split()
        if len(parts) < 4 or parts[0] != "v2" or not (parts[2].isdigit() and parts[3].isdigit()):  # noqa: PLR2004
            return None
        return cls(
            token_digest=parts[1],
            started_at=datetime.fromtimestamp(int(parts[2]), tz=UTC),
            ends_by=datetime.fromtimestamp(int(parts[3]), tz=UTC),
            existing=frozenset(parts[4:]),
        )


def token_digest(token: str) -> str:
    """Return a short, stable digest of a ClientRequestToken for tags and logs."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


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


def read_intent(iam: IAMClient, user_name: str) -> Intent | None:
    """Return the intent recorded on the user, if any."""
    tags = iam.list_user_tags(UserName=user_name)["Tags"]
    value = next((tag["Value"] for tag in tags if tag["Key"] == INTENT_TAG), None)
    return Intent.decode(value) if value else None


def record_intent(  # noqa: PLR0913 - keyword-only facts of one attempt
    iam: IAMClient,
    user_name: str,
    *,
    token: str,
    existing: Iterable[str],
    now: datetime,
    seconds_left: float,
) -> None:
    """Record, before creating a key, that an attempt for ``token`` starts now.

    ``seconds_left`` is the time the Lambda run has left (capped at Lambda's 900 s): a key this
    attempt creates appears before then.
    """
    ends_by = now + min(MAX_RUN, timedelta(seconds=max(0.0, seconds_left)))
    intent = Intent(
        token_digest=token_digest(token),
        started_at=now,
        ends_by=ends_by,
        existing=frozenset(existing),
    )
    iam.tag_user(UserName=user_name, Tags=[{"Key": INTENT_TAG, "Value": intent.encode()}])


def close_intent(iam: IAMClient, user_name: str) -> None:
    """Record that the last attempt left no key behind (best effort: an open intent is safe)."""
    with contextlib.suppress(ClientError, BotoCoreError):
        iam.tag_user(UserName=user_name, Tags=[{"Key": INTENT_TAG, "Value": CLOSED_INTENT}])


def discard(iam: IAMClient, user_name: str, access_key_id: str) -> None:
    """Delete a key this attempt made but could not store, then close the intent.

    Best effort: if the delete fails the intent stays open, and the retry of this rotation
    recognises the key as its orphan.
    """
    try:
        delete(iam, user_name, access_key_id)
    except (ClientError, BotoCoreError):
        return
    close_intent(iam, user_name)


def make_room(  # noqa: PLR0913 - the options are keyword-only and each is a distinct input
    iam: IAMClient,
    user_name: str,
    *,
    keys: list[AccessKey],
    referenced: Mapping[str, str],
    intent: Callable[[], Intent | None],
    token: str,
    staged: Iterable[str],
    holders: Callable[[], Mapping[str, str]],
) -> list[AccessKey]:
    """Delete our orphans, then free a slot if IAM's limit is reached; return the keys left.

    ``referenced`` maps key ids to the stage of the version that holds them; AWSCURRENT's key is
    never touched. ``intent`` is called only when a key no version references needs classifying;
    it vouches for at most one orphan (:meth:`Intent.orphan`, with ``staged`` version ids).
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
        close_intent(iam, user_name)  # IAM answered with an error: it made no key
        if _code(err) == "LimitExceeded":
            msg = (
                f"IAM user {user_name} reached the limit of {MAX_KEYS} access keys meanwhile: "
                "Secrets Manager will retry; if it fails again, the new key is named"
            )
            raise AccessKeyError(msg) from err
        raise
    except BotoCoreError:
        _remove_unanswered_key(iam, user_name, existing=frozenset(existing))
        raise
    return key["AccessKeyId"], key["SecretAccessKey"]


def _remove_unanswered_key(iam: IAMClient, user_name: str, *, existing: frozenset[str]) -> None:
    """Delete the key a CreateAccessKey without an answer may have made; close the intent."""
    try:
        for key in list_keys(iam, user_name):
            if key.access_key_id not in existing:
                delete(iam, user_name, key.access_key_id)
    except (ClientError, BotoCoreError, AccessKeyError):
        return  # the intent stays open: the retry of this rotation finds the orphan
    close_intent(iam, user_name)


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
