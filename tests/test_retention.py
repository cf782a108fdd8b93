"""Pruning the state file after `[state] retention`: SQLite on disk, and the daemon as a process."""

from __future__ import annotations

import sqlite3
import time

import httpx

from tests import test_production as prod
from tests.proc import Daemon
from watcher.core.transitions import Observed, detect
from watcher.state.store import Store


def observed(run_id, oid, status, kind="thread.run.step"):
    return Observed(oid, kind, status, "thread_1", run_id, {"id": oid, "object": kind})


def finish(store, run_id, *, done=True, sinks=("stdout",)):
    objs = [
        observed(run_id, run_id, "completed", "thread.run"),
        observed(run_id, f"s_{run_id}", "completed"),
    ]
    found = detect({}, objs, now=int(time.time()) - 10)
    return store.record(
        "thread_1", run_id, found.events, found.updates, cursor=None, done=done, sinks=list(sinks)
    )


def rows(path, sql):
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_prune_keeps_what_is_still_needed_in_small_batches(tmp_path):
    path = tmp_path / "s.db"
    store = Store(path)
    for i in range(250):  # finished runs added through the control API
        store.add_run_watch("thread_1", f"run_api{i}", "api")
        store.mark_delivered("stdout", finish(store, f"run_api{i}"))
    store.add_run_watch("thread_1", "run_active", "api")
    active = finish(store, "run_active", done=False)  # not yet on stdout
    store.add_run_watch("thread_1", "run_cfg", "config")
    store.mark_delivered("stdout", finish(store, "run_cfg"))
    store.add_thread_watch("thread_1", "config", 0.0)
    store.add_run_watch("thread_1", "run_found", "thread")
    store.mark_delivered("stdout", finish(store, "run_found"))
    store.add_run_watch("thread_1", "run_gone", "api")
    finish(store, "run_gone", sinks=())  # recorded with no sink at all
    store.remove_run_watch("thread_1", "run_gone")
    store.add_run_watch("thread_1", "run_dead", "api")
    dead, pending = finish(store, "run_dead", sinks=("webhook",))
    store.mark_dead("webhook", dead, error="HTTP 410")

    # nothing finished an hour ago: only the objects of the removed watch go
    assert sum(store.prune(time.time() - 3600)) == 2
    batches = list(store.prune(time.time() + 1))
    assert len(batches) >= 3 and max(batches) <= 2 * 100 + 100

    objects = {r for (r,) in rows(path, "SELECT DISTINCT run_id FROM objects")}
    assert objects == {"run_active"}
    watches = {r: d for r, d in rows(path, "SELECT run_id, done FROM run_watches")}
    # the config's watch and the thread watch's finds stay (done), so nothing is reported again
    assert watches == {"run_active": 0, "run_cfg": 1, "run_found": 1}
    assert [w.run_id for w in store.run_watches(active_only=True)] == ["run_active"]
    # the dead letter and the pending deliveries stay, with their events
    assert {s for (s,) in rows(path, "SELECT seq FROM events")} == {dead, pending, *active}
    assert store.queue_depth("webhook") == {"pending": 1, "dead": 1}
    assert sum(store.prune(time.time() + 1)) == 0  # a second pass finds nothing more
    store.close()


def test_a_state_file_from_before_retention_is_upgraded(tmp_path):
    path = tmp_path / "s.db"
    store = Store(path)
    store.add_run_watch("thread_1", "run_1", "api")
    finish(store, "run_1")
    store.close()
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE run_watches DROP COLUMN done_at")
    db.execute("PRAGMA user_version = 0")  # as releases before versioned migrations left it
    db.commit()
    db.close()
    store = Store(path)
    [(done_at,)] = rows(path, "SELECT done_at FROM run_watches")
    assert done_at is not None and abs(done_at - time.time()) < 60
    assert sum(store.prune(time.time() + 1)) > 0
    store.close()


def test_the_daemon_prunes_finished_runs_after_retention(sim, tmp_path):
    s = sim(prod.SCENARIO)
    port = prod.free_port()
    cfg = prod.config(tmp_path, s.base_url, [], port=port)
    base = cfg.read_text() + "[stdout]\nenabled = false\n"  # events no sink will take
    cfg.write_text(base)
    state = tmp_path / "state.db"
    d = Daemon("run", "--config", str(cfg), OPENAI_API_KEY=prod.KEY)
    try:
        d.wait_log("http endpoint listening")
        body = {"thread_id": "thread_a", "run_id": "run_1"}
        url = f"http://127.0.0.1:{port}/v1/watches"
        assert httpx.post(url, json=body, headers=prod.auth()).status_code == 201
        s.advance(5)
        d.wait_log("run finished; watch ends")
    finally:
        assert d.stop() == 0
    assert rows(state, "SELECT COUNT(*) FROM objects") == [(2,)]
    assert rows(state, "SELECT COUNT(*) FROM events")[0][0] >= 3
    cfg.write_text(base.replace("[state]\n", "[state]\nretention = 0.001\n"))
    d2 = Daemon("run", "--config", str(cfg), OPENAI_API_KEY=prod.KEY)
    try:
        d2.wait_log("state file pruned")
    finally:
        assert d2.stop() == 0
    assert rows(state, "SELECT COUNT(*) FROM objects") == [(0,)]
    assert rows(state, "SELECT COUNT(*) FROM run_watches") == [(0,)]
    assert rows(state, "SELECT COUNT(*) FROM events") == [(0,)]
