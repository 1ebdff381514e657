"""The leak scan can fail: it finds planted secrets, and its plugin fails a test that prints one."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest

from ses_smtp_rotator.password import derive_smtp_password
from tests import leakscan

if TYPE_CHECKING:
    from tests.conftest import IamKey

ROOT = Path(__file__).resolve().parents[2]


def test_find_leaks_names_only_a_prefix_of_what_it_finds() -> None:
    planted, absent = "s3cr3t-value-planted", "never-written-anywhere"
    found = leakscan.find_leaks(["log line", f"error: {planted}!"], [planted, absent])
    assert found == ["s3cr3t…"]


def test_exception_text_follows_causes_then_contexts() -> None:
    outer, cause, root, context = (
        RuntimeError("outer"),
        ValueError("cause-text"),
        OSError("root-cause-text"),
        KeyError("context-text"),
    )
    outer.__cause__, cause.__context__ = cause, root
    text = leakscan.exception_text(outer)
    for part in ("outer", "cause-text", "root-cause-text", "RuntimeError('outer')"):
        assert part in text
    cause.__cause__, cause.__context__ = None, context
    assert "context-text" in leakscan.exception_text(outer)


def test_harvest_reads_keys_passwords_and_canaries_from_moto(smtp_user: IamKey) -> None:
    sm = boto3.client("secretsmanager")
    value = {
        "password": "a-stored-password",
        "app_canary": "canary-1234567890",
        "region": "eu-west-1",
    }
    sm.create_secret(Name="leakscan-test", SecretString=json.dumps(value))
    material = leakscan.harvest()
    assert smtp_user.secret_access_key in material
    assert derive_smtp_password(smtp_user.secret_access_key, "eu-west-1") in material
    assert derive_smtp_password(smtp_user.secret_access_key, "us-east-1") in material
    assert {"a-stored-password", "canary-1234567890", json.dumps(value)} <= material
    assert "ses-smtp-user" not in material  # names are not secrets


_INNER_TESTS = """
import logging
import boto3
from moto import mock_aws

def _key():
    iam = boto3.client("iam", region_name="us-east-1")
    iam.create_user(UserName="u")
    return iam.create_access_key(UserName="u")["AccessKey"]

def test_prints_a_secret_key():
    with mock_aws():
        print("oops", _key()["SecretAccessKey"])

def test_logs_a_remembered_token():
    from tests import leakscan
    leakscan.remember("token-0123456789abcdef")
    logging.getLogger("x").warning("retrying token-0123456789abcdef")

def test_prints_only_a_key_id():
    with mock_aws():
        print("made", _key()["AccessKeyId"])
"""


def test_the_plugin_fails_a_test_that_leaks(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ("tests.leakscan",)\n')
    pytester.makepyfile(test_inner=textwrap.dedent(_INNER_TESTS))
    pytester.makefile(".ini", pytest="[pytest]\n")  # not this project's options (coverage)
    env = {
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")]),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", timeout=120)
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 3  # the tests themselves pass...
    assert outcomes.get("errors") == 2  # ...and two teardowns fail on the leak
    text = "\n".join(result.outlines)
    assert "leaked into the output, logs or failure text of test_inner.py::test_prints" in text
    assert "test_inner.py::test_logs_a_remembered_token (prefixes): ['token-…']" in text
    assert "test_prints_only_a_key_id" not in text.split("short test summary")[-1]
