"""Fleet mode's two rules: the secret carries the fleet's tag, its IAM user sits under the path.

In fleet mode (``FLEET_USER_PATH``) one function rotates many secrets, each with its own IAM user.
The guard refuses a secret without the tag ``FLEET_TAG_KEY=FLEET_TAG_VALUE`` before any step
runs, and every invocation that is about to touch a user's keys or tags first reads the user's
``Path`` (one GetUser) and refuses a user outside the fleet's path. The deployed policy grants the
same scope (users by path ARN, secrets by tag condition), so these checks turn what would be an
``AccessDenied`` half-way through a step into a clear refusal before anything changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from botocore.exceptions import ClientError

from rotation_handler.exceptions import AccessKeyError, NotInFleetError
from rotation_handler.keys import error_code

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

    from rotation_handler.guard import SecretState
    from rotation_handler.settings import Settings

_DENIED: Final = frozenset({"AccessDenied", "AccessDeniedException"})


def check_secret(state: SecretState, settings: Settings) -> None:
    """Refuse a secret that does not carry the fleet's tag (no-op outside fleet mode).

    Raises
    ------
    NotInFleetError
        Fleet mode, and DescribeSecret's Tags lack ``FLEET_TAG_KEY=FLEET_TAG_VALUE``.
    """
    fleet = settings.fleet
    if fleet is None:
        return
    found = state.tags.get(fleet.tag_key)
    if found == fleet.tag_value:
        return
    has = "no such tag" if found is None else f"{fleet.tag_key}={found}"
    msg = (
        f"secret {state.arn} is not in fleet {fleet.tag_value}: it must carry the tag "
        f"{fleet.tag_key}={fleet.tag_value} (FLEET_TAG_KEY, FLEET_TAG_VALUE) and has {has}. "
        "Tag it to let this function rotate it, or rotate it with another function"
    )
    raise NotInFleetError(msg)


def refuse_denied_secret(err: ClientError, secret_id: str, settings: Settings | None) -> None:
    """Turn DescribeSecret's AccessDenied in fleet mode into the refusal it stands for.

    The fleet's policy allows Secrets Manager actions only on secrets carrying the fleet's tag,
    so in AWS an untagged secret (or another fleet's) is denied before :func:`check_secret` can
    read its tags. Anything else is left to the caller.

    Raises
    ------
    NotInFleetError
        Fleet mode, and Secrets Manager answered AccessDenied.
    """
    fleet = settings.fleet if settings is not None else None
    code = error_code(err)
    if fleet is None or code not in _DENIED:
        return
    msg = (
        f"Secrets Manager refused to describe secret {secret_id} ({code}): the fleet function "
        f"may only read secrets carrying the tag {fleet.tag_key}={fleet.tag_value} "
        "(FLEET_TAG_KEY, FLEET_TAG_VALUE). Tag it to let this function rotate it, or rotate it "
        "with another function"
    )
    raise NotInFleetError(msg) from err


def user_path(iam: IAMClient, user_name: str) -> str | None:
    """Return the IAM user's Path, or ``None`` when the user does not exist.

    Raises
    ------
    NotInFleetError
        IAM refused GetUser: the fleet's policy allows it only for users under the path.
    """
    try:
        user = iam.get_user(UserName=user_name)["User"]
    except ClientError as err:
        code = error_code(err)
        if code == "NoSuchEntity":
            return None
        if code in _DENIED:
            msg = (
                f"IAM refused to read user {user_name} ({code}): the fleet function may only "
                "touch users under its FLEET_USER_PATH; create the app's user under that path"
            )
            raise NotInFleetError(msg) from err
        raise
    return str(user.get("Path") or "/")


def check_user(iam: IAMClient, settings: Settings, user_name: str) -> None:
    """Refuse an IAM user outside the fleet's path (no-op, and no call, outside fleet mode).

    Raises
    ------
    NotInFleetError
        The user's Path does not start with ``FLEET_USER_PATH`` (or IAM refused to read it).
    AccessKeyError
        The user does not exist.
    """
    if settings.fleet is None:
        return
    path = user_path(iam, user_name)
    if path is None:
        msg = f"IAM user {user_name} does not exist: create it or fix iam_user_name in the secret"
        raise AccessKeyError(msg)
    check_path(settings, user_name, path)


def check_path(settings: Settings, user_name: str, path: str) -> None:
    """Refuse a user whose ``path`` does not start with ``FLEET_USER_PATH`` (fleet mode).

    Raises
    ------
    NotInFleetError
        Fleet mode, and the path is outside the fleet's.
    """
    fleet = settings.fleet
    if fleet is None or path.startswith(fleet.user_path):
        return
    msg = (
        f"IAM user {user_name} has path {path}, outside this fleet's {fleet.user_path} "
        "(FLEET_USER_PATH): its keys are not touched. Create the app's user under the path"
    )
    raise NotInFleetError(msg)
