"""The sweep's ``SecondsSinceLastRotation`` metric, which the stack's overdue alarm watches.

The sweep prints its metrics as CloudWatch embedded metric format (EMF) JSON on stdout, as in
Lambda; the tests read them from there.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from rotation_handler import gate, sweep
from rotation_handler.observability import metrics
from rotation_handler.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Callable

    import pytest

    from sandbox.world import World

METRIC = "SecondsSinceLastRotation"
# The alarm's dimensions: template.yaml's RotationOverdueAlarm names exactly these.
ALARM_DIMENSIONS = {"service": "ses-smtp-rotation", "Step": "RetireOldKeys"}
# What a sweep right after a rotation may see at most: the test's own runtime, with room to spare.
JUST_NOW = 600.0


def emf_documents(out: str) -> list[dict[str, Any]]:
    """The EMF documents in ``out`` (one JSON object per line; log lines are skipped)."""
    documents = []
    for line in out.splitlines():
        if not line.startswith("{"):
            continue
        document = json.loads(line)
        if "_aws" in document and "CloudWatchMetrics" in document["_aws"]:
            documents.append(document)
    return documents


def metric_values(out: str, name: str) -> list[tuple[float, dict[str, str]]]:
    """Each value of metric ``name`` in ``out`` with the document's dimensions."""
    found = []
    for document in emf_documents(out):
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        if name not in {metric["Name"] for metric in directive["Metrics"]}:
            continue
        dimensions = {key: str(document[key]) for group in directive["Dimensions"] for key in group}
        value = document[name]
        found += [(float(v), dimensions) for v in (value if isinstance(value, list) else [value])]
    return found


def test_the_sweep_reports_the_seconds_since_the_last_rotation(
    make_world: Callable[..., World], capfd: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a secret that just rotated
    world = make_world()
    assert world.rotate().ok
    capfd.readouterr()
    # WHEN the scheduled sweep runs
    world.sweep()
    # THEN it emits one SecondsSinceLastRotation, small, with the dimensions the alarm uses
    ((value, dimensions),) = metric_values(capfd.readouterr().out, METRIC)
    assert 0 <= value < JUST_NOW
    assert dimensions == ALARM_DIMENSIONS


def test_the_metric_grows_with_the_time_since_the_rotation(
    make_world: Callable[..., World],
) -> None:
    # GIVEN a rotated secret, and its LastRotatedDate
    world = make_world()
    assert world.rotate().ok
    rotated = world.sm.describe_secret(SecretId=world.secret_arn)["LastRotatedDate"]
    # WHEN the sweep runs 40 days later
    state = gate.admit_secret(world.sm, world.secret_arn, Settings.from_env(os.environ))
    assert state.last_rotated == rotated
    later = rotated + timedelta(days=40)
    metrics.clear_metrics()
    sweep.retire_old_keys(
        sm=world.sm,
        iam=world.iam,
        settings=Settings.from_env(os.environ),
        secret_id=world.secret_arn,
        now=later,
    )
    # THEN the metric says 40 days
    recorded: dict[str, Any] = dict(metrics.metric_set)
    metrics.clear_metrics()
    assert recorded[METRIC]["Value"] == [timedelta(days=40).total_seconds()]


def test_a_secret_never_rotated_counts_from_its_creation(
    make_world: Callable[..., World], capfd: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a secret that was created but never rotated
    world = make_world()
    meta = world.sm.describe_secret(SecretId=world.secret_arn)
    assert meta.get("LastRotatedDate") is None
    capfd.readouterr()
    # WHEN the sweep runs / THEN the metric is the secret's age: it is reported, not left missing
    world.sweep()
    ((value, _),) = metric_values(capfd.readouterr().out, METRIC)
    assert 0 <= value < JUST_NOW
