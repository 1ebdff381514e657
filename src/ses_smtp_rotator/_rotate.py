"""The ``rotate`` subcommand: start a rotation now and, with ``--wait``, follow it to its end.

``RotateSecret`` with a ``ClientRequestToken`` made here (a UUID), so that botocore's retry of a
call whose answer was lost starts no second rotation; the schedule (``RotationRules``) and the
function are left as they are. The token is printed: it is the new version's id.

``--wait`` then polls, every :data:`POLL_SECONDS` until ``--timeout``:

* ``ListSecretVersionIds``: ``AWSPENDING`` on the token's version (started), ``AWSCURRENT`` on it
  (finished); the label gone without ``AWSCURRENT`` means the rotation was cancelled or replaced;
* ``FilterLogEvents`` on the function's log group (``/aws/lambda/<function>`` of the secret's
  ``RotationLambdaARN``, or ``--log-group``), on the lines whose ``version_id`` is the token: each
  step's progress and end, the SMTP test's attempts, the old key's fate, and a failing step's
  ``step failed`` line. A caller who may not read the log (``AccessDenied``) is told once and
  followed by the labels alone; a log group not found is looked for again at each poll. A function
  in another account than the secret's (a fleet's, rotating a member account's secret) logs in
  its own account, out of the caller's reach: the labels alone are followed from the start, and
  the first line says why (``--log-group`` is then ignored as well, being in the caller's account);
* without the log only, ``GetSecretValue`` on the token's version until it holds a value
  (createSecret done); the value is dropped unread, and a refusal only drops this signal.

Exit codes: 0 the token's version is ``AWSCURRENT`` (and, when the log is readable, no step of it
failed); 1 a step failed (the step and its message are printed), the rotation was cancelled or
replaced, ``--timeout`` passed (the last step seen is printed), or the secret cannot be read or
rotated; 2 bad usage. Key ids are masked; no secret is printed.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Final

from ses_smtp_rotator import _aws, _console
from ses_smtp_rotator._rotate_follow import Follower, LogsClient
from ses_smtp_rotator._rotate_lines import masked
from ses_smtp_rotator.exceptions import SecretUnavailableError, UsageError
from ses_smtp_rotator.sdk_logging import quiet_sdk_loggers

if TYPE_CHECKING:
    import argparse

__all__ = ["Follower", "LogsClient", "configure", "masked", "run"]
DEFAULT_TIMEOUT: Final = 300.0
MAX_TIMEOUT: Final = 3600.0


def configure(parser: argparse.ArgumentParser) -> None:
    """Add ``rotate``'s arguments (none of them is secret)."""
    parser.add_argument("--secret-id", required=True, help="name or ARN of the rotated secret")
    parser.add_argument(
        "--wait",
        action="store_true",
        help="follow the rotation to its end: exit 0 when the new version is AWSCURRENT, 1 when "
        "a step fails or --timeout passes",
    )
    parser.add_argument(
        "--timeout",
        type=_console.seconds_type(MAX_TIMEOUT, "300"),
        help=f"with --wait: seconds to wait at most (default {DEFAULT_TIMEOUT:.0f})",
    )
    _console.add_region(parser)
    parser.add_argument(
        "--log-group",
        help="with --wait: the function's log group (default /aws/lambda/<the function of the "
        "secret's RotationLambdaARN>)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object at the end (for scripts)"
    )


def run(args: argparse.Namespace) -> int:
    """Start a rotation; with ``--wait`` follow it (see the module docstring for exit codes).

    Raises
    ------
    UsageError, InvalidRegionError, RegionNotFoundError
        ``--timeout`` or ``--log-group`` without ``--wait``, a bad region, or none found
        (exit code 2).
    SecretUnavailableError
        The secret cannot be described, or ``RotateSecret`` was refused (exit code 1).
    """
    if not args.wait and (args.timeout is not None or args.log_group is not None):
        msg = "--timeout and --log-group apply only with --wait"
        raise UsageError(msg)
    region = _aws.region(args.region, args.secret_id)
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - optional

    quiet_sdk_loggers()  # botocore at DEBUG would log GetSecretValue's answer
    try:
        sm = _aws.client("secretsmanager", region=region)
        described = sm.describe_secret(SecretId=args.secret_id)
    except (ClientError, BotoCoreError) as err:
        fix = _aws.advice(
            err,
            "check its name, the region, and that you may call secretsmanager:DescribeSecret on it",
        )
        msg = f"cannot read secret {args.secret_id} ({_aws.error_code(err)}): {fix}"
        raise SecretUnavailableError(msg) from None
    arn, name = described["ARN"], described.get("Name", args.secret_id)
    lambda_arn = described.get("RotationLambdaARN") or ""
    token = str(uuid.uuid4())
    try:
        sm.rotate_secret(SecretId=arn, ClientRequestToken=token)
    except (ClientError, BotoCoreError) as err:
        raise SecretUnavailableError(_refused(args.secret_id, err, lambda_arn)) from None
    follower = Follower(
        sm=sm,
        arn=arn,
        name=name,
        token=token,
        timeout=args.timeout or DEFAULT_TIMEOUT,
        quiet=args.json,
    )
    follower.say(f"rotation of {name} started: version {token} (the ClientRequestToken)")
    if not args.wait:
        follower.result = "started"
        code = _console.EXIT_OK
    else:
        _attach_logs(follower, lambda_arn, args.log_group, region)
        code = follower.follow()
    if args.json:
        _console.out(json.dumps(follower.as_json(), indent=2))
    return code


def _attach_logs(follower: Follower, lambda_arn: str, log_group: str | None, region: str) -> None:
    """Give ``follower`` the function's log, unless it is out of reach in another account."""
    function_account, secret_account = _account_of(lambda_arn), _account_of(follower.arn)
    if function_account and secret_account and function_account != secret_account:
        follower.logs_state = "other-account"
        follower.say(
            f"the rotation function runs in account {function_account}, not the secret's "
            f"({secret_account}): its log is in that account, out of this one's reach, so the "
            "labels alone are followed (each step's lines are in the function's log group there)"
        )
        return
    follower.logs_group = log_group or (_log_group(lambda_arn) if lambda_arn else None)
    if follower.logs_group is not None:
        follower.logs = _logs_client(_region_of(lambda_arn) or region)


def _account_of(arn: str) -> str | None:
    """Return the account an ARN names, or ``None``.

    Examples
    --------
    >>> _account_of("arn:aws:lambda:eu-west-1:123456789012:function:f")
    '123456789012'
    """
    parts = arn.split(":")
    return (parts[4] or None) if len(parts) > 4 else None  # noqa: PLR2004 - arn:p:service:region:account


def _refused(secret_id: str, err: BaseException, lambda_arn: str) -> str:
    code = _aws.error_code(err)
    msg = f"cannot start a rotation of {secret_id} ({code})"
    if code == "InvalidRequestException" and lambda_arn:
        msg += (
            ": a rotation is probably in progress (AWSPENDING on a version other than "
            f"AWSCURRENT); `ses-smtp-rotator status --secret-id {secret_id}` shows it and the fix"
        )
    elif code == "InvalidRequestException":
        msg += ": the secret has no rotation function (deploy the stack, which sets it)"
    else:
        msg += (
            ": check that you may call secretsmanager:RotateSecret on it and "
            "lambda:InvokeFunction on its rotation function"
        )
    return msg


def _log_group(lambda_arn: str) -> str:
    """Return the default log group of the function ``lambda_arn`` names.

    Examples
    --------
    >>> _log_group("arn:aws:lambda:eu-west-1:123456789012:function:stack-ses-smtp-rotation")
    '/aws/lambda/stack-ses-smtp-rotation'
    """
    return f"/aws/lambda/{lambda_arn.split(':')[6] if lambda_arn.count(':') >= 6 else lambda_arn}"  # noqa: PLR2004 - the ARN's name part


def _region_of(lambda_arn: str) -> str | None:
    """Return the region of a function ARN, or ``None`` when it names none.

    Examples
    --------
    >>> _region_of("arn:aws:lambda:eu-west-1:123456789012:function:f")
    'eu-west-1'
    """
    parts = lambda_arn.split(":")
    return (parts[3] or None) if len(parts) > 3 else None  # noqa: PLR2004 - arn:partition:lambda:region


def _logs_client(region: str | None) -> LogsClient:
    import boto3  # noqa: PLC0415 - boto3 is an optional dependency

    client: LogsClient = boto3.client("logs", region_name=region, config=_aws.config())
    return client
