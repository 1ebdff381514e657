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
"""

from __future__ import annotations

import functools
import json
from typing import Any, Final

from moto.secretsmanager.models import FakeSecret, SecretsManagerBackend

CURRENT: Final = "AWSCURRENT"
_MARK: Final = "_default_follows_awscurrent"


def install() -> None:
    """Make moto's default version follow ``AWSCURRENT``, and its versions keep their dates."""
    _install_created_dates()
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
