"""What the command line answers to a slip: the unknown option and its closest, not a lecture.

The secret warning is kept for what looks like a secret; an unknown region, a value that is not a
secret access key and ``--region`` with ``--legacy-v2`` are refused (exit 2) in one line.
"""

from __future__ import annotations

import pytest

from ses_smtp_rotator import __version__, cli
from tests.unit.test_cli_derive import KEY, run


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        pytest.param(
            ["derive", "--regoin", "eu-west-1"],
            "`derive` has no option --regoin (did you mean --region?)",
            id="derive-regoin",
        ),
        pytest.param(
            ["status", "--secret-id", "s", "--jsno"],
            "`status` has no option --jsno (did you mean --json?)",
            id="status-jsno",
        ),
        pytest.param(
            ["sync", "--secret-id", "s", "--output", "f", "--onec"],
            "`sync` has no option --onec (did you mean --once?)",
            id="sync-onec",
        ),
        pytest.param(
            ["export", "--secret-id", "s", "--verbose=yes"],
            "`export` has no option --verbose;",
            id="no-close-option",
        ),
        pytest.param(
            ["status", "--secret-id", "s", "extra"],
            "`status` takes no positional argument (1 given, not shown)",
            id="positional",
        ),
    ],
)
def test_an_unknown_option_is_named_with_its_closest(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a slip on the command line / WHEN it runs
    code, out, err = run(argv, capsys, monkeypatch, KEY)
    # THEN one line names the option (and the closest one), exit 2, no lecture about secrets
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert says in err
    assert "secret" not in err.replace("--secret-id", "")


@pytest.mark.parametrize(
    ("argv", "stdin", "says"),
    [
        pytest.param(
            ["derive", "--region", "eu-west-9"],
            KEY,
            "SES has no SMTP endpoint in eu-west-9 that this version knows (did you mean eu-west-",
            id="unknown-region",
        ),
        pytest.param(
            ["derive", "--region", "eu-west-1"], "abc", "not a secret access key", id="abc-key"
        ),
        pytest.param(
            ["derive", "--region", "eu-west-1"],
            "AKIAIOSFODNN7EXAMPLE",
            "not a secret access key",
            id="an-access-key-id",
        ),
        pytest.param(
            ["derive", "--legacy-v2", "--region", "eu-west-1"],
            KEY,
            "--legacy-v2 passwords are not bound to a region, so --region does not apply",
            id="legacy-with-region",
        ),
    ],
)
def test_derive_refuses_what_would_print_a_useless_password(
    argv: list[str],
    stdin: str,
    says: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a region SES does not serve, a value that is no secret access key, or --region that
    # --legacy-v2 would ignore / WHEN derive runs / THEN exit 2, one line, nothing on stdout
    code, out, err = run(argv, capsys, monkeypatch, stdin)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert says in err
    assert stdin not in err


def test_any_region_derives_for_a_region_this_version_does_not_know(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a region in AWS's format that the list does not hold / WHEN --any-region is given
    code, out, _ = run(
        ["derive", "--region", "eu-west-9", "--any-region"], capsys, monkeypatch, KEY
    )
    # THEN the password is printed
    assert code == 0
    assert len(out.strip()) == 44


def test_a_missing_extra_says_how_to_install_it_from_the_wheel_or_a_clone(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an installation without boto3 (the aws extra)
    def refuse(_args: object) -> int:
        raise ModuleNotFoundError(name="boto3")

    real_parse = cli._parse

    def parse(argv: list[str]) -> object:
        args = real_parse(argv)
        args.run = refuse  # as an installation without boto3 fails when the command imports it
        return args

    monkeypatch.setattr(cli, "_parse", parse)
    # WHEN status runs
    code, _, err = run(["status", "--secret-id", "s"], capsys, monkeypatch, "")
    # THEN one line names the extra and both ways to install it (the package is not on an index)
    assert code == 2
    assert err.count("\n") == 1
    assert f"ses_smtp_rotator-{__version__}-py3-none-any.whl[aws]" in err
    assert "pip install '.[aws]'" in err
    assert "pip install 'ses-smtp-rotator[aws]'" not in err
