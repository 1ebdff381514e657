"""tools.audit: how a pip-audit report becomes an exit code (no network: canned reports)."""

from __future__ import annotations

from typing import Any

import pytest

from tools import audit

CLEAN: dict[str, Any] = {"name": "boto3", "version": "1.0", "vulns": []}
SKIPPED: dict[str, Any] = {"name": "six", "skip_reason": "Dependency not found on PyPI"}
VULNERABLE: dict[str, Any] = {
    "name": "urllib3",
    "version": "1.0",
    "vulns": [{"id": "GHSA-xxxx", "fix_versions": ["1.1"]}],
}


@pytest.mark.parametrize(
    ("reports", "code"),
    [
        pytest.param([[CLEAN], [CLEAN]], audit.EXIT_OK, id="all-audited-clean"),
        pytest.param([[CLEAN], [VULNERABLE]], audit.EXIT_VULNERABLE, id="one-vulnerability"),
        pytest.param([[CLEAN, SKIPPED]], audit.EXIT_VULNERABLE, id="partly-unauditable"),
        pytest.param([[SKIPPED], [SKIPPED]], audit.EXIT_UNREACHABLE, id="no-data-reachable"),
        pytest.param([[]], audit.EXIT_UNREACHABLE, id="pip-audit-did-not-run"),
    ],
)
def test_exit_code(reports: list[list[dict[str, Any]]], code: int) -> None:
    verdicts = {str(i): audit.judge({"dependencies": deps}) for i, deps in enumerate(reports)}
    assert audit.exit_code(verdicts) == code


def test_a_finding_names_the_package_the_advisory_and_the_fix() -> None:
    verdict = audit.judge({"dependencies": [CLEAN, VULNERABLE, SKIPPED]})
    assert (verdict.audited, verdict.skipped) == (2, ["six"])
    assert verdict.vulnerable == ["urllib3==1.0: GHSA-xxxx (fixed in 1.1)"]
