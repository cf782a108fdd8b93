"""The pure core, as tables: what we knew + what the API says → which events."""

from __future__ import annotations

import pytest

from watcher.core.events import event_id
from watcher.core.transitions import ObjectState, Observed, detect


def obs(oid: str, status: str, kind: str = "thread.run.step") -> Observed:
    data = {"id": oid, "object": kind, "status": status}
    return Observed(oid, kind, status, "thread_1", "run_1", data)


def known(**states: str | tuple[str, ...]) -> dict[str, ObjectState]:
    out = {}
    for oid, st in states.items():
        seq = (st,) if isinstance(st, str) else st
        out[oid] = ObjectState(seq[-1], frozenset(seq))
    return out


@pytest.mark.parametrize(
    ("before", "seen", "expected"),
    [
        # first sight: current status, previous null
        ({}, [("s1", "in_progress")], [("s1", "thread.run.step.in_progress", None)]),
        ({}, [("s1", "completed")], [("s1", "thread.run.step.completed", None)]),
        # a change
        (
            {"s1": "in_progress"},
            [("s1", "completed")],
            [("s1", "thread.run.step.completed", "in_progress")],
        ),
        # nothing changed: nothing
        ({"s1": "in_progress"}, [("s1", "in_progress")], []),
        # a status seen before is not reported again (same event id)
        ({"s1": ("in_progress", "requires_action")}, [("s1", "in_progress")], []),
        # an unknown future status is reported like any other
        (
            {"s1": "in_progress"},
            [("s1", "paused")],
            [("s1", "thread.run.step.paused", "in_progress")],
        ),
        # several objects, in the order observed
        (
            {"s1": "completed"},
            [("s1", "completed"), ("s2", "in_progress"), ("s3", "failed")],
            [
                ("s2", "thread.run.step.in_progress", None),
                ("s3", "thread.run.step.failed", None),
            ],
        ),
        # the same object twice in one observation: both transitions, chained
        (
            {},
            [("s1", "in_progress"), ("s1", "completed")],
            [
                ("s1", "thread.run.step.in_progress", None),
                ("s1", "thread.run.step.completed", "in_progress"),
            ],
        ),
    ],
)
def test_detect_table(before, seen, expected):
    result = detect(known(**before), [obs(o, s) for o, s in seen], now=123)
    assert [(e.data["id"], e.type, e.previous_status) for e in result.events] == expected
    for ev in result.events:
        assert ev.created_at == 123
        assert ev.id == event_id(ev.data["id"], ev.data["status"])


def test_run_events_are_named_after_the_run_kind():
    result = detect({}, [obs("run_1", "requires_action", "thread.run")], now=0)
    assert result.events[0].type == "thread.run.requires_action"


def test_updates_hold_new_status_and_every_status_seen():
    result = detect(known(s1="in_progress"), [obs("s1", "completed")], now=0)
    assert result.updates == {
        "s1": ObjectState("completed", frozenset({"in_progress", "completed"}))
    }


def test_unchanged_objects_give_no_update():
    assert detect(known(s1="completed"), [obs("s1", "completed")], now=0).updates == {}


def test_event_id_is_deterministic_and_distinct():
    # consumers drop repeats by id across restarts and upgrades: the value may never change
    assert event_id("step_1", "completed") == "evt_03b1c760a042d1358d5b551a228aeee6"
    assert event_id("step_1", "completed") == event_id("step_1", "completed")
    assert event_id("step_1", "completed") != event_id("step_1", "failed")
    assert event_id("step_1", "completed") != event_id("step_2", "completed")
    assert event_id("a", "bc") != event_id("ab", "c")


def test_envelope_shape():
    ev = detect({}, [obs("s1", "completed")], now=5).events[0]
    assert ev.envelope() == {
        "id": ev.id,
        "object": "event",
        "type": "thread.run.step.completed",
        "created_at": 5,
        "data": {"id": "s1", "object": "thread.run.step", "status": "completed"},
        "previous_status": None,
    }


def test_an_object_of_another_source_gets_the_same_envelope():
    """The core knows only the grouping (scope, watch): a top-level object has no scope."""
    data = {"id": "resp_1", "object": "response", "status": "completed"}
    found = detect({}, [Observed("resp_1", "response", "completed", "", "resp_1", data)], now=5)
    [ev] = found.events
    assert ev.envelope() == {
        "id": event_id("resp_1", "completed"),
        "object": "event",
        "type": "response.completed",
        "created_at": 5,
        "data": data,
        "previous_status": None,
    }
    assert (ev.thread_id, ev.run_id) == ("", "resp_1")  # the store's key, not the envelope
