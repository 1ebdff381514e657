"""The ``status`` subcommand: one secret's rotation state at a glance, and the fix of each problem.

It reads (never writes): ``DescribeSecret`` (rotation on, schedule, last and next rotation),
``ListSecretVersionIds`` (each version's labels and creation date), ``GetSecretValue`` per version
(only to learn which access key each holds: the value is parsed by
:func:`~ses_smtp_rotator.secret.parse_secret` and dropped, never printed), and on the IAM user the
secret names: ``ListAccessKeys``, ``ListUserTags`` (the grace period's record) and
``GetAccessKeyLastUsed``. Versions without labels are read only while a key is held by no
labelled version (newest first, at most :data:`UNLABELLED_READS`).

Every problem found comes with its fix, the runbook's command. Exit code 0: no problem; 1: at
least one problem (or the secret cannot be described); 2: bad usage. Key ids are masked
(``AKIA…WXYZ``) unless ``--show-key-ids``; a fix that needs a key id then shows it as a
``<placeholder>``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from ses_smtp_rotator import _aws, _console, _status_problems, _status_render, _status_trail
from ses_smtp_rotator._status_model import (
    CURRENT,
    PENDING,
    PREVIOUS,
    Key,
    Problem,
    Report,
    Version,
)
from ses_smtp_rotator.contract import RETIRE_TAG, Retirement
from ses_smtp_rotator.endpoints import validate_region
from ses_smtp_rotator.exceptions import InvalidSecretError, SecretUnavailableError, UsageError
from ses_smtp_rotator.sdk_logging import quiet_sdk_loggers
from ses_smtp_rotator.secret import parse_secret

if TYPE_CHECKING:
    import argparse

    from mypy_boto3_iam import IAMClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_secretsmanager.type_defs import SecretVersionsListEntryTypeDef

__all__ = ["Key", "Problem", "Report", "Version", "collect", "configure", "given_regions", "run"]
MAX_PAGES: Final = 10  # Secrets Manager keeps about 100 versions: 100 per page is plenty
UNLABELLED_READS: Final = 20  # as many unlabelled versions as the rotation function searches


def configure(parser: argparse.ArgumentParser) -> None:
    """Add ``status``'s arguments (none of them is secret)."""
    # One secret, or (``_status_fleet``) every secret tagged for a fleet: never both.
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--secret-id", help="name or ARN of the rotated secret")
    target.add_argument(
        "--fleet",
        metavar="NAME",
        help="every secret tagged for fleet NAME instead: one line per app (docs/cli.md)",
    )
    parser.add_argument(
        "--region",
        action="append",
        default=[],
        help=f"{_console.REGION_HELP}; with --fleet, repeat it or give a comma list for several",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object (for scripts)")
    parser.add_argument(
        "--show-key-ids",
        action="store_true",
        help="print access key ids in full (default: masked, AKIA…WXYZ)",
    )


def run(args: argparse.Namespace) -> int:
    """Print the secret's rotation state; exit 0 when healthy, 1 when a problem was found.

    Raises
    ------
    SecretUnavailableError
        The secret cannot be described or its versions listed (exit code 1).
    """
    regions = given_regions(args.region)
    if len(regions) > 1:
        msg = "--secret-id reads one secret in one region: give one --region (several: --fleet)"
        raise UsageError(msg)
    report = collect(args.secret_id, now=datetime.now(UTC), region=regions[0] if regions else None)
    view = _status_render.View(report=report, show_key_ids=args.show_key_ids)
    # Whether notices can arrive is a warning at most: it never changes the exit code.
    notices = _status_trail.check(_aws.region_of_arn(report.arn) or _aws.region(args.region))
    if args.json:
        _console.out(json.dumps({**view.as_json(), "notices": notices.as_json()}, indent=2))
    else:
        _console.out(f"{view.as_text()}\n{notices.as_text()}")
    return _console.EXIT_FAILED if report.problems else _console.EXIT_OK


def given_regions(values: list[str]) -> list[str]:
    """Return the regions of repeated ``--region`` options, each maybe a comma list, in order.

    Raises
    ------
    InvalidRegionError
        One of them is not a region name (exit code 2).

    Examples
    --------
    >>> given_regions(["eu-west-1,us-east-1", "eu-west-1"])
    ['eu-west-1', 'us-east-1']
    """
    words = [word.strip() for value in values for word in value.split(",")]
    return list(dict.fromkeys(validate_region(word) for word in words if word))


def collect(  # noqa: PLR0913 - keyword-only, each with a default
    secret_id: str,
    *,
    now: datetime,
    region: str | None = None,
    sm: SecretsManagerClient | None = None,
    iam: IAMClient | None = None,
    last_used: bool = True,
) -> Report:
    """Read the secret's rotation state from Secrets Manager and IAM (read-only calls).

    ``region`` as :func:`ses_smtp_rotator._aws.region` takes it (``None``: the secret ARN's, the
    chain's, ``AWS_REGION``); ``sm`` and ``iam`` are clients to read with (default: built here, in
    that region). ``last_used=False`` skips ``GetAccessKeyLastUsed`` (shown, never judged).

    Raises
    ------
    SecretUnavailableError
        The secret cannot be described or its versions listed.
    RegionNotFoundError
        No region given or found.
    """
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - optional

    sm = sm or _aws.secrets_client(region, secret_id)
    quiet_sdk_loggers()  # botocore at DEBUG would log GetSecretValue's answer: the whole secret
    try:
        described = sm.describe_secret(SecretId=secret_id)
        listed = _list_versions(sm, described["ARN"])
    except (ClientError, BotoCoreError) as err:
        fix = _aws.advice(
            err,
            "check its name, the region, and that you may call secretsmanager:DescribeSecret "
            "and ListSecretVersionIds on it",
        )
        msg = f"cannot read secret {secret_id} ({_aws.error_code(err)}): {fix}"
        raise SecretUnavailableError(msg) from None
    rules = dict(described.get("RotationRules") or {})
    report = Report(
        arn=described["ARN"],
        name=described.get("Name", secret_id),
        enabled=bool(described.get("RotationEnabled")),
        schedule=rules,
        last_rotated=described.get("LastRotatedDate"),
        next_rotation=described.get("NextRotationDate"),
        versions=sorted(
            (
                Version(v["VersionId"], sorted(v.get("VersionStages", [])), v.get("CreatedDate"))
                for v in listed
            ),
            key=lambda v: (_rank(v.stages), -(v.created.timestamp() if v.created else 0.0)),
        ),
    )
    for version in report.versions:
        if version.stages:
            _read_version(sm, report.arn, version)
    _status_problems.judge_rotation(report, now=now)
    _status_problems.judge_current(report)
    _read_keys(
        report,
        sm,
        iam or _aws.client("iam", region=sm.meta.region_name),
        now=now,
        last_used=last_used,
    )
    return report


def _rank(stages: list[str]) -> int:
    """Order versions as people read them: current, pending, previous, then the rest."""
    order = (CURRENT, PENDING, PREVIOUS)
    return min((order.index(s) for s in stages if s in order), default=len(order) + (not stages))


def _list_versions(sm: SecretsManagerClient, arn: str) -> list[SecretVersionsListEntryTypeDef]:
    """Return every version of the secret, labelled or not (botocore has no paginator here)."""
    found: list[SecretVersionsListEntryTypeDef] = []
    page_after: dict[str, str] = {}  # the NextToken of the page before, if any
    for _ in range(MAX_PAGES):
        page = sm.list_secret_version_ids(
            SecretId=arn, IncludeDeprecated=True, MaxResults=100, **page_after
        )
        found += page.get("Versions", [])
        if not page.get("NextToken"):
            break
        page_after = {"NextToken": page["NextToken"]}
    return found


def _read_version(sm: SecretsManagerClient, arn: str, version: Version) -> None:
    """Learn which key ``version`` holds; its value is parsed and dropped, never kept."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - optional

    try:
        answer = sm.get_secret_value(SecretId=arn, VersionId=version.version_id)
    except (ClientError, BotoCoreError) as err:
        code = _aws.error_code(err)
        if code == "ResourceNotFoundException":
            version.holds, version.note = "no-value", "no value stored"
        else:
            version.holds, version.note = "unreadable", f"cannot be read ({code})"
        return
    try:
        secret = parse_secret(answer.get("SecretString") or "", default_region=sm.meta.region_name)
    except InvalidSecretError as err:  # its text names a field, never a value
        version.holds, version.note = "invalid", f"does not parse: {err}"
        return
    finally:
        del answer
    version.holds = "credentials" if secret.has_credentials else "bootstrap"
    version.access_key_id, version.iam_user = secret.access_key_id, secret.iam_user_name


def _read_keys(
    report: Report, sm: SecretsManagerClient, iam: IAMClient, *, now: datetime, last_used: bool
) -> None:
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - optional

    # The user of the newest label that names one: AWSCURRENT's, unless it cannot be read.
    report.iam_user = next((v.iam_user for v in report.versions if v.iam_user), None)
    if report.iam_user is None:
        return
    try:
        listed = iam.list_access_keys(UserName=report.iam_user)["AccessKeyMetadata"]
        tags = {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName=report.iam_user)["Tags"]}
    except (ClientError, BotoCoreError) as err:
        message = (
            f"the keys of IAM user {report.iam_user} cannot be read ({_aws.error_code(err)}): "
            "check that the user the secret names (iam_user_name) exists and that you may call "
            "iam:ListAccessKeys, iam:ListUserTags and iam:GetAccessKeyLastUsed on it"
        )
        report.problems.append(Problem("iam-unreadable", message))
        return
    report.keys = [Key(k["AccessKeyId"], k["Status"], k.get("CreateDate")) for k in listed]
    _match_keys(report, sm)
    retire = Retirement.decode(tags.get(RETIRE_TAG, ""))
    for key in report.keys:
        key.last_used = _last_used(iam, key.access_key_id) if last_used else None
        key.grace_period_since = _grace_since(retire, key)
    _status_problems.judge_keys(report, now=now)


def _grace_since(retire: Retirement | None, key: Key) -> datetime | None:
    """When ``key``'s grace period started, if the function's retirement record names it.

    Only an Active key that AWSCURRENT does not hold is in its grace period.
    """
    if retire is None or retire.access_key_id != key.access_key_id or key.status != "Active":
        return None
    if any(CURRENT in held["stages"] for held in key.held_by):
        return None
    return retire.since


def _match_keys(report: Report, sm: SecretsManagerClient) -> None:
    """Name the versions that hold each key; read unlabelled versions only while one is missing."""
    by_id = {key.access_key_id: key for key in report.keys}
    unlabelled = [v for v in report.versions if not v.stages][:UNLABELLED_READS]
    for version in [v for v in report.versions if v.stages] + unlabelled:
        if not version.stages:
            if all(key.held_by for key in report.keys):
                break
            _read_version(sm, report.arn, version)
        key = by_id.get(version.access_key_id or "")
        if key is not None:
            key.held_by.append({"version_id": version.version_id, "stages": version.stages})


def _last_used(iam: IAMClient, key_id: str) -> dict[str, str | None] | None:
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - optional

    try:
        used = iam.get_access_key_last_used(AccessKeyId=key_id).get("AccessKeyLastUsed", {})
    except (ClientError, BotoCoreError):
        return None
    date = used.get("LastUsedDate")
    return {
        "date": _status_render.when(date),
        "service": used.get("ServiceName"),
        "region": used.get("Region"),
    }
