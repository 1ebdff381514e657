"""What the rotation function writes and the CLI reads: one definition for both sides.

The staging labels, the tags the function keeps on an SMTP user, and the format of the record
that starts an old key's grace period. ``ses-smtp-rotator status`` parses these with the same
code the function writes them with, so the two cannot drift apart.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

CURRENT: Final = "AWSCURRENT"
PENDING: Final = "AWSPENDING"
PREVIOUS: Final = "AWSPREVIOUS"

# The user tag that binds an IAM user to the one secret whose rotations may act on it. Set by
# the app's stack (fleet/app.yaml, template.yaml), by an administrator who adopts a user, or by
# the first rotation of a single-secret function whose configuration names both; never by a
# fleet function, whose policy does not allow it to write this key.
BINDING_TAG: Final = "ses-smtp-rotation:bound-to"
# The secret tag that puts a secret in a fleet: its value is the fleet's name (fleet/app.yaml sets
# it; the fleet function's FLEET_TAG_KEY may name another key). ``status --fleet`` lists by it.
FLEET_TAG: Final = "ses-smtp-rotation:fleet"
# CloudFormation's own tag on what a stack creates: an app is named by the stack that made it.
STACK_NAME_TAG: Final = "aws:cloudformation:stack-name"
# Tag keys and values as Secrets Manager accepts them (the ASCII subset), and their lengths.
TAG_TEXT: Final = re.compile(r"^[A-Za-z0-9 _.:/=+@-]+$")
MAX_TAG_KEY: Final = 128
MAX_TAG_VALUE: Final = 256
# Written by earlier versions on a user's first rotation ("first to rotate owns it"): it never
# grants anything now, but a user it gives to another secret is still refused.
LEGACY_OWNER_TAG: Final = "ses-smtp-rotation:secret"
# The function's own records: the last key-creating attempt, and the old key's grace period.
INTENT_TAG: Final = "ses-smtp-rotation:intent"
RETIRE_TAG: Final = "ses-smtp-rotation:retire"
# The tags the function writes (what the key clean-up removes with the keys).
FUNCTION_TAGS: Final = (INTENT_TAG, RETIRE_TAG, LEGACY_OWNER_TAG)


def digest(text: str) -> str:
    """Return a short, stable digest of a ClientRequestToken or a secret ARN for tags and logs.

    Examples
    --------
    >>> digest("arn:aws:secretsmanager:eu-west-1:111122223333:secret:smtp-AbCdEf")
    'a12a58112538'
    """
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True, kw_only=True)
class Retirement:
    """finishSecret's record: ``access_key_id`` stopped being live at ``since``, for one secret.

    Only the secret that recorded it (its ARN's digest) may retire the key after its grace period.
    """

    secret_digest: str
    access_key_id: str
    since: datetime

    def is_for(self, secret_arn: str, access_key_id: str) -> bool:
        """Whether this record is ``secret_arn``'s, for ``access_key_id``."""
        return self.secret_digest == digest(secret_arn) and self.access_key_id == access_key_id

    def encode(self) -> str:
        """Tag value: ``v2 <secret digest> <key id> <epoch seconds>``."""
        return f"v2 {self.secret_digest} {self.access_key_id} {int(self.since.timestamp())}"

    @classmethod
    def decode(cls, value: str) -> Retirement | None:
        """Parse a tag value; ``None`` for anything this version did not write.

        Examples
        --------
        >>> Retirement.decode("v2 a12a58112538 AKIAEXAMPLE 0").access_key_id
        'AKIAEXAMPLE'
        >>> Retirement.decode("v1 AKIAEXAMPLE 0") is None
        True
        """
        parts = value.split()
        if len(parts) != 4 or parts[0] != "v2" or not parts[3].isdigit():  # noqa: PLR2004
            return None
        return cls(
            secret_digest=parts[1],
            access_key_id=parts[2],
            since=datetime.fromtimestamp(int(parts[3]), tz=UTC),
        )
