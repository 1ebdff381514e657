"""Plain IAM calls on the SMTP user's access keys and tags: no policy here.

Which key may go, and when, is decided in :mod:`rotation_handler.lifecycle`; this module only
talks to IAM, and makes sure the one call that is not idempotent (CreateAccessKey) is never
repeated blindly by botocore's retry.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from rotation_handler.exceptions import AccessKeyError, error_code
from rotation_handler.observability import THROTTLING
from rotation_handler.records import AccessKey

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mypy_boto3_iam import IAMClient

MAX_KEYS: Final = 2
_NO_BLIND_RETRY: Final = "ses-smtp-rotation-no-blind-retry"


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
        if error_code(err) == "NoSuchEntity":
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


def _no_blind_retry(
    caught_exception: Exception | None = None,
    response: tuple[Any, Mapping[str, Any]] | None = None,
    operation: Any = None,  # noqa: ANN401 - botocore's OperationModel
    **_: Any,  # noqa: ANN401 - botocore hook
) -> None:
    """Stop botocore's retry of a call whose first attempt may have taken effect.

    Only an answer that proves nothing happened (throttling) lets the standard retry go on. A
    lost answer (connection reset, read time-out) or a server error ends the call here, and the
    caller finds out what happened before deciding.
    """
    if caught_exception is not None:
        raise caught_exception
    if response is None:
        return
    parsed = response[1]
    code = str(parsed.get("Error", {}).get("Code", ""))
    status = int(parsed.get("ResponseMetadata", {}).get("HTTPStatusCode", 200))
    if code and code not in THROTTLING and status >= 500:  # noqa: PLR2004 - HTTP server errors
        raise ClientError(dict(parsed), getattr(operation, "name", "CreateAccessKey"))  # type: ignore[arg-type]


def answered_without_effect(err: ClientError) -> bool:
    """Whether an error answer proves the request took no effect (a 4xx refusal, not a 5xx)."""
    status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400))
    return status < 500  # noqa: PLR2004 - HTTP server errors


def create(iam: IAMClient, user_name: str) -> tuple[str, str]:
    """Create an access key and return ``(access_key_id, secret_access_key)``.

    botocore retries the call only after an answer proving it had no effect (throttling); any
    other failure reaches the caller, who must not assume that no key was made.
    """
    iam.meta.events.register_first(
        "needs-retry.iam.CreateAccessKey", _no_blind_retry, unique_id=_NO_BLIND_RETRY
    )
    key = iam.create_access_key(UserName=user_name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def delete(iam: IAMClient, user_name: str, access_key_id: str) -> None:
    """Delete a key; a key already gone counts as deleted."""
    try:
        iam.delete_access_key(UserName=user_name, AccessKeyId=access_key_id)
    except ClientError as err:
        if error_code(err) != "NoSuchEntity":
            raise


def set_status(iam: IAMClient, user_name: str, access_key_id: str, *, active: bool) -> bool:
    """Set a key Active or Inactive; return ``False`` when the key no longer exists."""
    try:
        iam.update_access_key(
            UserName=user_name,
            AccessKeyId=access_key_id,
            Status="Active" if active else "Inactive",
        )
    except ClientError as err:
        if error_code(err) != "NoSuchEntity":
            raise
        return False
    return True


def write_tags(iam: IAMClient, user_name: str, tags: Mapping[str, str]) -> None:
    """Set tags on the user (others are left as they are)."""
    iam.tag_user(UserName=user_name, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])


def now_utc() -> datetime:
    """Return the current time, timezone-aware (IAM's CreateDate is UTC)."""
    return datetime.now(tz=UTC)
