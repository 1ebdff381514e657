"""The intent: how a later attempt knows a key no version holds was made by this function.

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
still being retried) vouches for nothing else. IAM has no tags on access keys, so the user tag is
the only place that survives a crash.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from mypy_boto3_iam import IAMClient

    from rotation_handler.keys import AccessKey

TAG: Final = "ses-smtp-rotation:intent"
# The tag value of an intent whose attempt cleaned up after itself: it vouches for no key.
CLOSED: Final = "closed"
# A key created by an attempt appears before its Lambda run ends, at most 900 s (Lambda's limit)
# after the intent was recorded; the skew allows for the Lambda clock and IAM's clock
# disagreeing a little.
MAX_RUN: Final = timedelta(seconds=900)
_SKEW: Final = timedelta(seconds=60)


def token_digest(token: str) -> str:
    """Return a short, stable digest of a ClientRequestToken for tags and logs."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


@dataclass(frozen=True, kw_only=True)
class Intent:
    """The record, written before CreateAccessKey, that lets a later attempt recognise an orphan."""

    token_digest: str
    started_at: datetime
    ends_by: datetime
    existing: frozenset[str]

    def speaks_for(self, token: str, *, staged: Iterable[str]) -> bool:
        """Whether this intent may vouch for keys during an attempt of rotation ``token``.

        ``staged`` are the ids of the versions that carry a staging label (a version id is its
        rotation's token): another rotation that is still labelled speaks only for itself.
        """
        if self.token_digest == token_digest(token):
            return True
        return all(token_digest(version) != self.token_digest for version in staged)

    def orphan(
        self, keys: Iterable[AccessKey], *, token: str, staged: Iterable[str]
    ) -> AccessKey | None:
        """Return the key this intent's run created, if an attempt of ``token`` may call it ours.

        ``None`` when the intent does not speak for ``token`` (:meth:`speaks_for`), or when no
        key, or more than one, was created during the run and is absent from its list (two cannot
        be told apart from a key made by hand).
        """
        if not self.speaks_for(token, staged=staged):
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


def read(iam: IAMClient, user_name: str) -> Intent | None:
    """Return the open intent recorded on the user, if any."""
    tags = iam.list_user_tags(UserName=user_name)["Tags"]
    value = next((tag["Value"] for tag in tags if tag["Key"] == TAG), None)
    return Intent.decode(value) if value else None


def record(  # noqa: PLR0913 - keyword-only facts of one attempt
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
    iam.tag_user(UserName=user_name, Tags=[{"Key": TAG, "Value": intent.encode()}])


def close(iam: IAMClient, user_name: str) -> None:
    """Record that the last attempt left no key behind (best effort: an open intent is safe)."""
    with contextlib.suppress(ClientError, BotoCoreError):
        iam.tag_user(UserName=user_name, Tags=[{"Key": TAG, "Value": CLOSED}])
