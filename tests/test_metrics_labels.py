"""Event types as metric labels: every kind's statuses get a series; anything else is "other"."""

from __future__ import annotations

import pytest

from watcher.service.metrics import event_label


@pytest.mark.parametrize(
    "event_type",
    [
        "thread.run.completed",
        "thread.run.step.in_progress",
        "response.completed",
        "response.in_progress",
        "batch.finalizing",
        "fine_tuning.job.succeeded",
        "vector_store.files_batch.completed",
    ],
)
def test_known_types_have_their_own_series(event_type):
    assert event_label(event_type) == event_type


@pytest.mark.parametrize(
    "event_type", ["thread.run.teleported", "response.x" * 50, "batch.", "nonsense"]
)
def test_unknown_types_are_other(event_type):
    assert event_label(event_type) == "other"
