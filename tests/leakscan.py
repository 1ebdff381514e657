"""A pytest plugin: no test may leave secret material in its output, logs or failure text.

For every test, after its teardown, the plugin gathers the secrets that existed during it:

* every secret access key of moto's IAM backends, with its v4 SMTP password for each region in
  play (and the legacy v2 one), and the secret string of every Secrets Manager version with its
  credential fields and canaries (``*canary*`` keys). moto wipes its backends when ``mock_aws``
  stops, so the plugin reads them just before each wipe, and once more after the teardown (for
  moto's server, which keeps them);
* whatever a test hands to :func:`remember` (RotationTokens, canaries planted by hand).

It then scans what the test left uncaptured by its own fixtures: stdout and stderr captured at the
file-descriptor level (Powertools writes its JSON logs there), the captured log records (with their
exception text) of setup, call and teardown, and the text of a failure. A hit turns the test's
teardown into an error that shows only a short prefix of each leaked value. Output a test reads
itself (``capsys``/``capfd``, as the CLI tests of ``export`` and ``derive`` do on purpose) is
consumed and no longer scanned; those tests assert on it themselves.
"""

from __future__ import annotations

import json
import warnings
from typing import TYPE_CHECKING, Any, Final

import pytest
from moto.core.base_backend import BackendDict
from moto.iam.models import iam_backends
from moto.secretsmanager.models import secretsmanager_backends

from ses_smtp_rotator.password import derive_legacy_v2_password, derive_smtp_password

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable

# Shorter strings (ports, "{}", short test fixtures) would match by accident.
MIN_LENGTH: Final = 8
_CREDENTIAL_FIELDS: Final = ("password", "secret_access_key")
_DEFAULT_REGIONS: Final = ("us-east-1",)

_ledger: set[str] = set()
_original_reset: Callable[[], None] | None = None


def remember(*material: str) -> None:
    """Add values that must not appear in the current test's output (tokens, canaries)."""
    _ledger.update(item for item in material if item)


def _secret_strings() -> list[tuple[str, str]]:
    """(region, secret string) of every version of every secret in moto's backends."""
    found: list[tuple[str, str]] = []
    for account in list(secretsmanager_backends.values()):
        for region, backend in list(account.items()):
            for secret in list(getattr(backend, "secrets", {}).values()):
                versions = getattr(secret, "versions", {})
                found += [
                    (region, str(v["secret_string"]))
                    for v in list(versions.values())
                    if v.get("secret_string")
                ]
    return found


def _secret_access_keys() -> list[str]:
    keys: list[str] = []
    for account in list(iam_backends.values()):
        for backend in list(account.values()):
            for user in list(getattr(backend, "users", {}).values()):
                keys += [key.secret_access_key for key in getattr(user, "access_keys", [])]
    return keys


def _fields(text: str) -> tuple[set[str], set[str]]:
    """Credential fields, canaries and the region of one secret string (if it is JSON)."""
    try:
        value: Any = json.loads(text)
    except ValueError:
        return set(), set()
    if not isinstance(value, dict):
        return set(), set()
    found = {str(value[name]) for name in _CREDENTIAL_FIELDS if value.get(name)}
    found |= {str(v) for k, v in value.items() if "canary" in str(k)}
    if isinstance(value.get("passwords"), dict):
        found |= {str(v) for v in value["passwords"].values()}
    regions = {str(value["region"])} if value.get("region") else set()
    return found, regions


def harvest() -> set[str]:
    """Return the secret material in moto's backends now (see the module docstring)."""
    material: set[str] = set()
    regions = set(_DEFAULT_REGIONS)
    for region, text in _secret_strings():
        fields, named = _fields(text)
        material |= {text, *fields}
        regions |= {region, *named}
    for key in _secret_access_keys():
        material.add(key)
        with warnings.catch_warnings():  # the legacy form is deprecated, and still a secret
            warnings.simplefilter("ignore", DeprecationWarning)
            material.add(derive_legacy_v2_password(key))
        for region in regions:
            try:
                material.add(derive_smtp_password(key, region))
            except ValueError:
                continue  # a secret naming a bogus region: no password can exist for it
    return {item for item in material if len(item) >= MIN_LENGTH}


def find_leaks(texts: Iterable[str], material: Iterable[str]) -> list[str]:
    """Return a short prefix of each value of ``material`` found in ``texts`` (sorted)."""
    joined = "\n".join(texts)
    return sorted({item[:6] + "…" for item in material if item and item in joined})


def exception_text(error: BaseException) -> str:
    """Return the text of ``error`` and of every exception it was raised from or during."""
    parts: list[str] = []
    seen: BaseException | None = error
    while seen is not None:
        parts += [str(seen), repr(seen)]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


def _harvesting_reset(_cls: object) -> None:
    _ledger.update(harvest())
    assert _original_reset is not None
    _original_reset()


def pytest_configure(config: pytest.Config) -> None:  # noqa: ARG001 - hook signature
    """Read moto's backends before each wipe (``mock_aws`` start/stop, moto's reset API)."""
    global _original_reset  # noqa: PLW0603 - the plugin's one piece of session state
    if _original_reset is None:
        _original_reset = BackendDict.reset
        BackendDict.reset = classmethod(_harvesting_reset)  # type: ignore[assignment,method-assign]


def pytest_unconfigure(config: pytest.Config) -> None:  # noqa: ARG001 - hook signature
    """Put moto's reset back."""
    global _original_reset  # noqa: PLW0603 - see pytest_configure
    if _original_reset is not None:
        BackendDict.reset = _original_reset  # type: ignore[method-assign]
        _original_reset = None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:  # noqa: ARG001 - hook signature
    """Start each test with an empty ledger."""
    _ledger.clear()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """After teardown, fail the test if its uncaptured output holds secret material."""
    report: pytest.TestReport = yield
    failures: list[str] = item.stash.setdefault(_FAILURES, [])
    if report.failed and report.longrepr is not None:
        failures.append(str(report.longrepr))
    if call.when != "teardown":
        return report
    texts = [content for _, content in report.sections] + failures
    leaked = find_leaks(texts, _ledger | harvest())
    _ledger.clear()
    if leaked:
        report.outcome = "failed"
        report.longrepr = (
            f"secret material leaked into the output, logs or failure text of {item.nodeid} "
            f"(prefixes): {leaked}"
        )
    return report


_FAILURES = pytest.StashKey[list[str]]()
