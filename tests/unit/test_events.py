from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

import pytest

from sandbox import events
from sandbox.events import BAD_EVENTS, EVENTS_DIR, STEPS, EventFileError, load_event

if TYPE_CHECKING:
    from pathlib import Path

REQUIRED_KEYS = {"SecretId", "ClientRequestToken", "Step", "RotationToken"}


def test_events_folder_holds_exactly_the_documented_events() -> None:
    # GIVEN the events/ folder that sam local invoke, the tests and the docs share
    # WHEN we list it
    names = {path.stem for path in EVENTS_DIR.glob("*.json")}
    # THEN each file is a step event or a documented bad event, and none is missing
    assert names == set(STEPS) | set(BAD_EVENTS)


@pytest.mark.parametrize("step", STEPS)
def test_step_event_is_a_valid_rotation_event(step: str) -> None:
    # GIVEN the event file named after a rotation step
    # WHEN it is loaded
    event = load_event(step)
    # THEN it has the keys Secrets Manager sends (RotationToken too), its own Step, UUID tokens
    # and a secret ARN
    assert set(event) == REQUIRED_KEYS
    assert event["Step"] == step
    assert str(uuid.UUID(event["ClientRequestToken"])) == event["ClientRequestToken"]
    assert str(uuid.UUID(event["RotationToken"])) == event["RotationToken"]
    assert event["SecretId"].startswith("arn:aws:secretsmanager:")


def test_step_events_share_one_rotation() -> None:
    # GIVEN the four step events
    # WHEN they are loaded
    loaded = [load_event(step) for step in STEPS]
    # THEN they are one rotation: same secret, same tokens, as Secrets Manager sends them
    keys = ("SecretId", "ClientRequestToken", "RotationToken")
    assert len({tuple(event[key] for key in keys) for event in loaded}) == 1


@pytest.mark.parametrize(
    ("name", "defect"),
    [
        pytest.param("unknownStep", "Step", id="unknown-step"),
        pytest.param("missingToken", "ClientRequestToken", id="missing-token"),
    ],
)
def test_bad_events_are_bad_in_exactly_one_way(name: str, defect: str) -> None:
    # GIVEN a documented bad event
    # WHEN it is loaded
    event = load_event(name)
    # THEN only the documented defect distinguishes it from a valid event
    assert defect not in event or event[defect] not in STEPS
    valid = load_event(STEPS[0])
    assert {key for key in REQUIRED_KEYS if event.get(key) != valid.get(key)} == {defect}


def test_overrides_replace_and_add_keys_on_a_fresh_copy() -> None:
    # GIVEN an override for the secret and the token, and an extra key
    arn = "arn:aws:secretsmanager:eu-west-1:000000000000:secret:local-123456"
    # WHEN the event is loaded with them
    event = load_event("testSecret", SecretId=arn, ClientRequestToken="t-1", RotationToken="r")
    event["Step"] = "mutated"
    # THEN they are applied, and the next load is unaffected by the caller's mutation
    assert (event["SecretId"], event["ClientRequestToken"], event["RotationToken"]) == (
        arn,
        "t-1",
        "r",
    )
    assert load_event("testSecret")["Step"] == "testSecret"


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("", id="empty"),
        pytest.param("../pyproject", id="path-traversal"),
        pytest.param("sub/createSecret", id="subfolder"),
        pytest.param(".hidden", id="hidden"),
    ],
)
def test_names_that_are_not_plain_file_names_are_refused(name: str) -> None:
    # GIVEN a name that would leave events/ or is not a file name
    # WHEN it is loaded / THEN it is refused before any file is read
    with pytest.raises(EventFileError, match="file name in events/"):
        load_event(name)


def test_unknown_event_name_is_a_missing_file() -> None:
    # GIVEN a name with no file / WHEN loaded / THEN the error names the missing file
    with pytest.raises(FileNotFoundError, match=r"noSuchStep\.json"):
        load_event("noSuchStep")


@pytest.mark.parametrize(
    "content",
    [
        pytest.param([], id="not-an-object"),
        pytest.param({"Step": 1}, id="non-string-value"),
    ],
)
def test_malformed_event_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: object
) -> None:
    # GIVEN an events folder holding a file that is not an object of strings
    (tmp_path / "broken.json").write_text(json.dumps(content), encoding="utf-8")
    monkeypatch.setattr(events, "EVENTS_DIR", tmp_path)
    # WHEN it is loaded / THEN the error names the file
    with pytest.raises(EventFileError, match=r"broken\.json"):
        load_event("broken")
