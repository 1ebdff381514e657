"""Where moto's Secrets Manager parts from the service in ways a rotation notices, put right.

moto keeps a *default version* apart from the ``AWSCURRENT`` label: ``GetSecretValue`` without a
stage reads it, and ``PutSecretValue`` with ``AWSCURRENT`` demotes it to ``AWSPREVIOUS``. Its
``UpdateSecretVersionStage`` moves the label but not the default, so after a rotation's
finishSecret a plain ``get-secret-value`` returns the old value, and adopting a key as the runbook
says (``put-secret-value --version-stages AWSCURRENT``) leaves two versions labelled
``AWSCURRENT``. In the service there is only the label; :func:`install` makes moto's default
follow it. moto's server runs in this process (``ThreadedMotoServer``), so the fix reaches it too.

moto's ``ListSecretVersionIds`` also answers each version's ``CreatedDate`` with the time of the
call; the service answers when the version was made (``status`` shows how long a rotation has been
pending from it): :func:`install` makes moto answer the version's own date.

moto's STS ``AssumeRole`` hands out credentials for any role ARN, even a role that does not exist
(its ARN's account is how moto switches accounts). STS refuses with ``AccessDenied`` a role that
does not exist or whose trust policy does not let the caller's account in: :func:`install` makes
moto do the same (the trust policy's conditions are not evaluated).

``PutSecretValue`` accepts a ``RotationToken`` that moto ignores; :func:`install` records it, so a
test can prove the rotation function passed it (:func:`rotation_token_received`).

A new CloudTrail trail logs every management event (its default event selector); moto's
``GetEventSelectors`` answers no selector for it, and its ``DescribeTrails`` says
``HasCustomEventSelectors: false`` even after ``PutEventSelectors``. :func:`install` makes moto
answer both as the service does (``status`` reads them to tell whether notices can arrive).
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any, Final

from moto.cloudtrail.models import Trail
from moto.core.exceptions import AccessDeniedError
from moto.iam.exceptions import NotFoundException
from moto.iam.models import iam_backends
from moto.secretsmanager.models import FakeSecret, SecretsManagerBackend, secretsmanager_backends
from moto.secretsmanager.responses import SecretsManagerResponse
from moto.sts.models import STSBackend

CURRENT: Final = "AWSCURRENT"
_MARK: Final = "_default_follows_awscurrent"
_ROLE_ARN: Final = re.compile(r"^arn:(aws[a-z-]*):iam::(\d{12}):role/(?:.*/)?([^/]+)$")
_ASSUME: Final = frozenset({"sts:AssumeRole", "sts:*", "*"})
# FakeSecret attribute: version id -> the RotationToken its PutSecretValue carried.
_TOKENS: Final = "rotation_tokens_received"


def install() -> None:
    """Put right where moto parts from the services (see the module's docstring); idempotent."""
    _install_created_dates()
    _install_assume_role_check()
    _install_rotation_token_record()
    _install_trail_selectors()
    original = SecretsManagerBackend.update_secret_version_stage
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def update_secret_version_stage(
        self: SecretsManagerBackend,
        secret_id: str,
        version_stage: str,
        remove_from_version_id: str,
        move_to_version_id: str,
    ) -> Any:  # noqa: ANN401 - moto's own return value, passed on
        result = original(
            self, secret_id, version_stage, remove_from_version_id, move_to_version_id
        )
        secret = self.secrets[secret_id]
        if version_stage == CURRENT and move_to_version_id and isinstance(secret, FakeSecret):
            secret.set_default_version_id(move_to_version_id)
        return result

    setattr(update_secret_version_stage, _MARK, True)
    SecretsManagerBackend.update_secret_version_stage = update_secret_version_stage  # type: ignore[method-assign]


def _install_created_dates() -> None:
    """Make ``ListSecretVersionIds`` answer each version's creation date (idempotent)."""
    original = SecretsManagerBackend.list_secret_version_ids
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def list_secret_version_ids(self: SecretsManagerBackend, secret_id: str) -> str:
        answer = json.loads(original(self, secret_id))
        versions = self.secrets[secret_id].versions
        for version in answer.get("Versions", []):
            made = versions.get(version.get("VersionId"), {}).get("createdate")
            if made is not None:
                version["CreatedDate"] = made
        return json.dumps(answer)

    setattr(list_secret_version_ids, _MARK, True)
    SecretsManagerBackend.list_secret_version_ids = list_secret_version_ids  # type: ignore[method-assign]


def _install_assume_role_check() -> None:
    """Make ``AssumeRole`` refuse a missing role, or one that does not trust the caller."""
    original = STSBackend.assume_role
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def assume_role(self: STSBackend, **kwargs: Any) -> Any:  # noqa: ANN401 - moto's own value
        role_arn = str(kwargs.get("role_arn"))
        if not _may_assume(role_arn, caller_account=self.account_id):
            caller = f"arn:{self.partition}:iam::{self.account_id}:root"
            raise AccessDeniedError(caller, f"sts:AssumeRole on resource: {role_arn}")
        return original(self, **kwargs)

    setattr(assume_role, _MARK, True)
    STSBackend.assume_role = assume_role  # type: ignore[method-assign, assignment]


def _may_assume(role_arn: str, *, caller_account: str) -> bool:
    match = _ROLE_ARN.match(role_arn)
    if match is None:
        return False
    partition, account, name = match.groups()
    try:
        role = iam_backends[account][partition].get_role(name)
    except (KeyError, NotFoundException):
        return False
    if role.arn != role_arn:  # same name under another path
        return False
    return _trusts(role.assume_role_policy_document, caller_account)


def _trusts(policy: object, account: str) -> bool:
    """Whether a trust policy allows ``sts:AssumeRole`` to a principal of ``account``."""
    try:
        document = json.loads(policy) if isinstance(policy, str) else policy
    except ValueError:
        return False
    statements = document.get("Statement", []) if isinstance(document, dict) else []
    for statement in statements if isinstance(statements, list) else [statements]:
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        if not _ASSUME & set(_listed(statement.get("Action"))):
            continue
        principal = statement.get("Principal")
        principals = _listed(principal.get("AWS")) if isinstance(principal, dict) else []
        if principal == "*" or any(_names(p, account) for p in principals):
            return True
    return False


def _listed(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _names(principal: str, account: str) -> bool:
    """Whether a principal names ``account`` (its id, its root or an ARN in it) or anyone."""
    return principal in ("*", account) or principal.split(":")[4:5] == [account]


def _install_rotation_token_record() -> None:
    """Make ``PutSecretValue`` remember the ``RotationToken`` it received (idempotent)."""
    original = SecretsManagerResponse.put_secret_value
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def put_secret_value(self: SecretsManagerResponse) -> str:
        answer = original(self)
        token = self._get_param("RotationToken")
        if token:
            stored = json.loads(answer)
            secret = self.backend.secrets[stored["ARN"]]
            received = getattr(secret, _TOKENS, None) or {}
            received[stored["VersionId"]] = token
            setattr(secret, _TOKENS, received)
        return answer

    setattr(put_secret_value, _MARK, True)
    SecretsManagerResponse.put_secret_value = put_secret_value  # type: ignore[method-assign]


def rotation_token_received(
    secret_arn: str, version_id: str, *, account_id: str, region: str
) -> str | None:
    """Return the RotationToken the PutSecretValue of a version carried, if it carried one."""
    secret = secretsmanager_backends[account_id][region].secrets[secret_arn]
    received: dict[str, str] = getattr(secret, _TOKENS, None) or {}
    return received.get(version_id)


# CloudTrail's default event selector: every management event, read and write, no data event.
_DEFAULT_SELECTORS: Final = (
    {"ReadWriteType": "All", "IncludeManagementEvents": True, "DataResources": []},
)


def _install_trail_selectors() -> None:
    original_get, original_describe = Trail.get_event_selectors, Trail.description
    if getattr(original_get, _MARK, False):
        return

    def custom(trail: Trail) -> bool:
        return bool(trail.event_selectors or trail.advanced_event_selectors)

    @functools.wraps(original_get)
    def get_event_selectors(self: Trail) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        if custom(self):
            return original_get(self)
        return [dict(selector) for selector in _DEFAULT_SELECTORS], []

    @functools.wraps(original_describe)
    def description(self: Trail, include_region: bool = False) -> dict[str, Any]:  # noqa: FBT001, FBT002 - moto's signature
        return {**original_describe(self, include_region), "HasCustomEventSelectors": custom(self)}

    setattr(get_event_selectors, _MARK, True)
    Trail.get_event_selectors = get_event_selectors  # type: ignore[method-assign]
    Trail.description = description  # type: ignore[method-assign]
