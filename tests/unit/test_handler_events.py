"""Events are claims: anything that is not what Secrets Manager sends is refused, briefly."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import pytest

from rotation_handler import app, events
from rotation_handler.exceptions import BadEventError, UnknownStepError
from rotation_handler.observability import metrics
from sandbox.secrets_manager import LocalLambdaContext

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# Longer than any message the function writes about one field, with room to spare.
BOUND = 400
CONTEXT = cast("LambdaContext", LocalLambdaContext())


@pytest.fixture(autouse=True)
def metrics_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    # What the template's POWERTOOLS_METRICS_NAMESPACE gives a deployed function: these events
    # are refused before the function's settings are read.
    monkeypatch.setattr(metrics, "namespace", "SesSmtpRotationTest")


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(None, id="null"),
        pytest.param([], id="list"),
        pytest.param("x", id="string"),
        pytest.param(5, id="number"),
    ],
)
def test_an_event_that_is_no_json_object_is_refused(event: Any) -> None:  # noqa: ANN401 - any JSON
    # WHEN the function is invoked with it / THEN it says what it takes, not a TypeError
    with pytest.raises(BadEventError, match="not a JSON object"):
        app.lambda_handler(event, CONTEXT)


def _step(**fields: object) -> dict[str, object]:
    event: dict[str, object] = {
        "SecretId": "arn:aws:secretsmanager:us-east-1:123456789012:secret:s-AbCdEf",
        "ClientRequestToken": "0b8c1f6e-6a42-4d1f-9b8a-0c1d2e3f4a5b",
        "Step": "createSecret",
    }
    return event | fields


@pytest.mark.parametrize(
    ("event", "field"),
    [
        pytest.param(_step(ClientRequestToken="t" * 100_000), "ClientRequestToken", id="long"),
        pytest.param(_step(ClientRequestToken="\x00" * 100_000), "ClientRequestToken", id="nul"),
        pytest.param(_step(ClientRequestToken="a b"), "ClientRequestToken", id="space"),
        pytest.param(_step(ClientRequestToken=5), "ClientRequestToken", id="number"),
        pytest.param(_step(SecretId="s\n" * 5000), "SecretId", id="newlines"),
    ],
)
def test_a_field_that_is_not_what_secrets_manager_sends_is_refused_briefly(
    event: dict[str, object], field: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN the function is invoked with it
    with pytest.raises(BadEventError, match=field) as raised:
        app.lambda_handler(event, CONTEXT)
    # THEN the message quotes a short, printable part of it, and so does the failure's log line
    message = str(raised.value)
    assert len(message) < BOUND
    assert message.isprintable()
    logged = capsys.readouterr().out
    assert "step failed" in logged
    assert all(len(line) < BOUND * 4 for line in logged.splitlines())
    assert "\\u0000\\u0000\\u0000" not in logged


def test_an_unknown_step_is_named_briefly() -> None:
    with pytest.raises(UnknownStepError, match="expected one of createSecret") as raised:
        app.lambda_handler(_step(Step="x" * 10_000), CONTEXT)
    assert len(str(raised.value)) < BOUND


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        pytest.param("abc", "'abc'", id="short"),
        pytest.param("x" * 100, "'" + "x" * 40 + "'... (100 characters)", id="long"),
        pytest.param("\x00" * 100, "'" + "\\x00" * 10 + "'... (100 characters)", id="unprintable"),
        pytest.param(None, "a NoneType", id="not-a-string"),
    ],
)
def test_an_excerpt_is_short_and_printable(value: object, shown: str) -> None:
    assert events.excerpt(value) == shown
