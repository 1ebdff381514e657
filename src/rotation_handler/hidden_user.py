"""Why IAM hides a fleet's user: deleted (or moved) after its keys were made, or never there.

A fleet's policy is scoped to its user path, so IAM answers ``GetUser`` with ``AccessDenied``
both for a user outside the path and for a user that does not exist: the answer alone cannot
tell a user deleted by hand from a mistyped name. The secret's own versions can. A labelled
version (``AWSCURRENT``, ``AWSPREVIOUS``) that holds an access key of the user shows that the user
existed and that this secret rotated it; a secret none of whose labelled versions ever held a key
of that user names one it never rotated, most often a typo or a user not created yet. This module
only words the error; the gate's refusal stands either way and nothing is changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from rotation_handler.exceptions import HiddenUserError
from rotation_handler.state import CURRENT, PREVIOUS

if TYPE_CHECKING:
    from rotation_handler.context import StepContext
    from ses_smtp_rotator.secret import SmtpSecret

_CHECK: Final = "Check with: aws iam get-user --user-name {user}"


def explain(ctx: StepContext, current: SmtpSecret) -> HiddenUserError:
    """Return the gate's refusal of ``current``'s user, worded for what the versions show.

    Called when the gate raised :class:`~rotation_handler.exceptions.HiddenUserError` for
    ``current.iam_user_name``; reads at most ``AWSPREVIOUS``, only on this error path.
    """
    user = current.iam_user_name
    fleet = ctx.settings.fleet
    path = fleet.user_path if fleet is not None else "/"
    stage = held_by(ctx, current)
    check = _CHECK.format(user=user)
    if stage is not None:
        msg = (
            f"IAM refused to read user {user} (AccessDenied), and the secret's {stage} holds an "
            f"access key of that user, so it existed: it was deleted by hand, or moved out of "
            f"this fleet's {path} (FLEET_USER_PATH). {check}. If it is gone, create the app's "
            f"user again under the path (its stack does) and point iam_user_name at it"
        )
    else:
        msg = (
            f"IAM refused to read user {user} (AccessDenied), and no labelled version of the "
            f"secret ever held a key of that user: the name is most likely mistyped, or the user "
            f"was never created under this fleet's {path} (FLEET_USER_PATH). {check}, then fix "
            f"iam_user_name in the secret or create the user under the path"
        )
    return HiddenUserError(msg)


def held_by(ctx: StepContext, current: SmtpSecret) -> str | None:
    """Return the label of a version that holds a key of ``current``'s user, if any."""
    if current.has_credentials:
        return CURRENT
    previous = ctx.versions.read_labelled(PREVIOUS)
    if previous is not None and previous.access_key_id:
        return PREVIOUS if previous.iam_user_name == current.iam_user_name else None
    return None
