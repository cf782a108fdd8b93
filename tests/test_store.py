"""The SQLite state file on disk: one transaction per detection, delivery marks, versions."""

from __future__ import annotations

import sqlite3

import pytest

from watcher.core.transitions import ObjectState, Observed, detect
from watcher.state.store import SCHEMA_VERSION, StateError, Store


def observed(oid, status, kind="thread.run.step"):
    return Observed(
        oid, kind, status, "thread_1", "run_1", {"id": oid, "object": kind, "status": status}
    )


def test_record_then_reopen_keeps_states_cursor_and_pending(tmp_path):
    path = tmp_path / "state.db"
    store = Store(path)
    store.add_run_watch("thread_1", "run_1", "config")
    found = detect(
        {}, [observed("run_1", "in_progress", "thread.run"), observed("s1", "completed")], now=1
    )
    seqs = store.record(
        "thread_1", "run_1", found.events, found.updates, cursor="s1", done=False, sinks=["stdout"]
    )
    assert len(seqs) == 2
    store.close()

    again = Store(path)
    assert again.known_states("thread_1", "run_1") == {
        "run_1": ObjectState("in_progress", frozenset({"in_progress"})),
        "s1": ObjectState("completed", frozenset({"completed"})),
    }
    [watch] = again.run_watches()
    assert (watch.cursor, watch.done) == ("s1", False)
    pending = again.pending("stdout")
    assert [p.event_id for p in pending] == [e.id for e in found.events]
    again.mark_delivered("stdout", [p.seq for p in pending])
    assert again.pending("stdout") == []


def test_record_is_atomic(tmp_path):
    store = Store(tmp_path / "s.db")
    store.add_run_watch("thread_1", "run_1", "config")
    found = detect({}, [observed("s1", "completed")], now=1)
    with pytest.raises(sqlite3.IntegrityError):
        # a sink listed twice violates the deliveries key: nothing of the record may stay
        store.record(
            "thread_1",
            "run_1",
            found.events,
            found.updates,
            cursor="s1",
            done=True,
            sinks=["stdout", "stdout"],
        )
    assert store.known_states("thread_1", "run_1") == {}
    assert store.pending("stdout") == []
    assert store.run_watches()[0].cursor is None


def test_newer_schema_is_refused_and_file_untouched(tmp_path):
    path = tmp_path / "s.db"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(StateError, match="newer version"):
        Store(path)
    assert path.read_bytes() == before


def test_corrupt_file_is_a_clear_error_and_left_untouched(tmp_path):
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not a database" * 100)
    before = path.read_bytes()
    with pytest.raises(StateError, match=r"s\.db"):
        Store(path)
    assert path.read_bytes() == before


def test_thread_watches_and_ignored_runs(tmp_path):
    store = Store(tmp_path / "s.db")
    assert store.add_thread_watch("thread_1", "config", 100.0)
    assert not store.add_thread_watch("thread_1", "config", 200.0)
    store.mark_runs_ignored("thread_1", ["run_old"])
    store.add_run_watch("thread_1", "run_new", "thread")
    assert store.runs_of_thread("thread_1") == {"run_old", "run_new"}
    assert [w.run_id for w in store.run_watches(active_only=True)] == ["run_new"]
    [tw] = store.thread_watches()
    assert (tw.started_at, tw.listed) == (100.0, False)
    store.mark_thread_listed("thread_1")
    assert store.thread_watches()[0].listed
