"""SQLite work does not run on the event loop: a state file held by another writer delays
the recording of a transition, not the daemon (its HTTP endpoint answers meanwhile)."""

from __future__ import annotations

import sqlite3

import httpx

from tests import test_production as prod
from tests.proc import Daemon, event_pairs


def test_a_locked_state_file_does_not_stall_the_event_loop(sim, tmp_path):
    s = sim(prod.SCENARIO)
    port = prod.free_port()
    cfg = prod.config(tmp_path, s.base_url, [("thread_a", "run_1")], port=port)
    d = Daemon("run", "--config", str(cfg), OPENAI_API_KEY=prod.KEY)
    try:
        d.wait_log("http endpoint listening")
        d.wait_for(lambda: ("run_1", "queued") in event_pairs(d.events))
        d.wait_log("watching")
        other = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another writer holds the file (busy_timeout: 5 s)
        try:
            listed = s.stats()["by_route"]["steps"]
            s.advance(1.5)  # run_1 and step_1 in_progress: a transition to record
            d.wait_for(lambda: s.stats()["by_route"]["steps"] > listed, what="the next poll")
            for _ in range(2):
                r = httpx.get(f"http://127.0.0.1:{port}/livez", timeout=30)
                assert r.status_code == 200
        finally:
            other.execute("ROLLBACK")  # well within the busy timeout when the loop is free
            other.close()
        d.wait_for(lambda: ("step_1", "in_progress") in event_pairs(d.events))
        # the loop answered while the write waited, and the write then went through
        assert not any("cannot write the state file" in line for line in d.stderr)
    finally:
        assert d.stop() == 0
