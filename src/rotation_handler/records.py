"""The IAM user as the function sees it: its keys, and the records the function keeps on it.

The records are tags on the user: its binding, the last intent, the retirement.

The binding (``ses-smtp-rotation:bound-to``) names the one secret whose rotations may act on the
user. The function reads it (the gate, :mod:`rotation_handler.gate`, decides with it) and writes
it only when its own configuration names both the secret and the user (``SECRET_ARN`` and
``SMTP_IAM_USER_NAME``) and the user has none yet.

The intent: how a later attempt knows a key no version holds was made by this function.

Before CreateAccessKey, createSecret records in a tag on the IAM user which rotation (a digest of
its token), when the attempt started, when its Lambda run ends at the latest, and which keys
existed then. An attempt that fails with an error it can handle cleans up before it raises (it
deletes the key it made, or finds none was made) and *closes* the intent, which then vouches for
nothing, so a key made by hand before the retry is foreign, never "ours". Only a run that died
without running its error path (Lambda timeout, a crash, a failed clean-up) leaves it open.

One attempt creates one key, so an open intent vouches for at most one: the only key created
during that run and absent from the list. It speaks for the retry of the same rotation, and for a
later rotation once its own was abandoned (cancelled: no version with its token carries a
staging label any more). An intent of a rotation that is still labelled (it stored its key, or is
still being retried) vouches for nothing else. It also names the secret (a digest of its ARN):
an intent another secret recorded vouches for nothing here. IAM has no tags on access keys, so the
user tag is the only place that survives a crash.

The retirement (:class:`ses_smtp_rotator.contract.Retirement`): finishSecret records which key
stopped being live, when, and for which secret; the sweep retires only a key so recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from ses_smtp_rotator.contract import (
    BINDING_TAG,
    INTENT_TAG,
    LEGACY_OWNER_TAG,
    RETIRE_TAG,
    Retirement,
    digest,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

TAG: Final = INTENT_TAG
# The tag value of an intent whose attempt cleaned up after itself: it vouches for no key.
CLOSED: Final = "closed"
# A key created by an attempt appears before its Lambda run ends, at most 900 s (Lambda's limit)
# after the intent was recorded; the skew allows for the Lambda clock and IAM's clock
# disagreeing a little.
MAX_RUN: Final = timedelta(seconds=900)
_SKEW: Final = timedelta(seconds=60)


token_digest = digest


@dataclass(frozen=True, kw_only=True)
class AccessKey:
    """One IAM access key of the user (metadata only: IAM never returns the secret again)."""

    access_key_id: str
    active: bool
    created: datetime


@dataclass(frozen=True, kw_only=True)
class User:
    """An IAM user as GetUser answered: its path and tags (the function's records among them)."""

    name: str
    path: str
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def records(self) -> UserRecords:
        """The binding, intent and retirement recorded on the user."""
        return UserRecords.from_tags(self.tags)


@dataclass(frozen=True, kw_only=True)
class Intent:
    """The record, written before CreateAccessKey, that lets a later attempt recognise an orphan."""

    secret_digest: str
    token_digest: str
    started_at: datetime
    ends_by: datetime
    existing: frozenset[str]
    # The live key when the attempt started (AWSCURRENT's): once this rotation is AWSCURRENT, the
    # key that was live before it, which AWSPREVIOUS holds, without reading AWSPREVIOUS.
    live: str | None = None

    def held_live(
        self, access_key_id: str, *, current_version: str | None, secret_arn: str
    ) -> bool:
        """Whether ``access_key_id`` was live when the rotation now AWSCURRENT began (ours, old)."""
        return (
            self.live == access_key_id
            and current_version is not None
            and self.secret_digest == token_digest(secret_arn)
            and self.token_digest == token_digest(current_version)
        )

    def speaks_for(self, token: str, *, staged: Iterable[str], secret_arn: str) -> bool:
        """Whether this intent may vouch for keys during an attempt of rotation ``token``.

        ``staged`` are the ids of the versions that carry a staging label (a version id is its
        rotation's token): another rotation that is still labelled speaks only for itself. An
        intent recorded for another secret never speaks.
        """
        if self.secret_digest != token_digest(secret_arn):
            return False
        if self.token_digest == token_digest(token):
            return True
        return all(token_digest(version) != self.token_digest for version in staged)

    def orphan(
        self, keys: Iterable[AccessKey], *, token: str, staged: Iterable[str], secret_arn: str
    ) -> AccessKey | None:
        """Return the key this intent's run created, if an attempt of ``token`` may call it ours.

        ``None`` when the intent does not speak for ``token`` (:meth:`speaks_for`), or when no
        key, or more than one, was created during the run and is absent from its list (two cannot
        be told apart from a key made by hand).
        """
        if not self.speaks_for(token, staged=staged, secret_arn=secret_arn):
            return None
        made = [
            key
            for key in keys
            if key.access_key_id not in self.existing
            and self.started_at - _SKEW <= key.created <= self.ends_by + _SKEW
        ]
        return made[0] if len(made) == 1 else None

    def encode(self) -> str:
        """Tag value: ``v4 <secret> <token> <start> <end> <live|-> <key id> ...`` (no commas)."""
        stamps = [str(int(moment.timestamp())) for moment in (self.started_at, self.ends_by)]
        digests = [self.secret_digest, self.token_digest]
        return " ".join(["v4", *digests, *stamps, self.live or "-", *sorted(self.existing)])

    @classmethod
    def decode(cls, value: str) -> Intent | None:
        """Parse a tag value; ``None`` for anything this version did not write.

        Earlier formats (v2 had no secret) vouch for nothing: they cannot say whose they are; v3
        names no live key.
        """
        parts = value.split()
        version = parts[0] if parts else ""
        if len(parts) < 5 or version not in {"v3", "v4"} or not (parts[3] + parts[4]).isdigit():  # noqa: PLR2004
            return None
        live, keys = (None, parts[5:]) if version == "v3" else (parts[5], parts[6:])
        return cls(
            secret_digest=parts[1],
            token_digest=parts[2],
            started_at=datetime.fromtimestamp(int(parts[3]), tz=UTC),
            ends_by=datetime.fromtimestamp(int(parts[4]), tz=UTC),
            existing=frozenset(keys),
            live=None if live in (None, "-") else live,
        )


@dataclass(frozen=True, kw_only=True)
class UserRecords:
    """What the user's tags say: its binding, the last attempt's intent, the retirement."""

    bound_to: str | None
    intent: Intent | None
    retirement: Retirement | None = None
    # Written by earlier versions ("the first secret to rotate it"): it grants nothing now.
    legacy_owner: str | None = None

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> UserRecords:
        """Read the records from the user's tags (other tags are ignored)."""
        value, retire = tags.get(TAG), tags.get(RETIRE_TAG)
        return cls(
            bound_to=tags.get(BINDING_TAG) or None,
            intent=Intent.decode(value) if value else None,
            retirement=Retirement.decode(retire) if retire else None,
            legacy_owner=tags.get(LEGACY_OWNER_TAG) or None,
        )


def opened(  # noqa: PLR0913 - keyword-only facts of one attempt
    *,
    secret_arn: str,
    token: str,
    existing: Iterable[str],
    now: datetime,
    seconds_left: float,
    live: str | None = None,
) -> dict[str, str]:
    """Return the tag that records, before creating a key, that an attempt for ``token`` starts.

    ``seconds_left`` is the time the Lambda run has left (capped at Lambda's 900 s): a key this
    attempt creates appears before then. ``live`` is the live key as the attempt starts.
    """
    ends_by = now + min(MAX_RUN, timedelta(seconds=max(0.0, seconds_left)))
    intent = Intent(
        secret_digest=token_digest(secret_arn),
        token_digest=token_digest(token),
        started_at=now,
        ends_by=ends_by,
        existing=frozenset(existing),
        live=live,
    )
    return {TAG: intent.encode()}


def retiring(secret_arn: str, access_key_id: str, *, since: datetime) -> dict[str, str]:
    """Return the tag that starts the grace period of ``secret_arn``'s old key at ``since``."""
    record = Retirement(secret_digest=digest(secret_arn), access_key_id=access_key_id, since=since)
    return {RETIRE_TAG: record.encode()}


def binding(secret_arn: str) -> dict[str, str]:
    """Return the tag that binds a user to ``secret_arn`` (single-secret functions only)."""
    return {BINDING_TAG: secret_arn}


def closed() -> dict[str, str]:
    """Return the tag that records that the last attempt left no key behind."""
    return {TAG: CLOSED}
