"""Another process holding the state file's write lock (a backup, an operator's `sqlite3`)
longer than the busy timeout: the polls that must write wait and are retried, with a plain
error line; not "bug: a poll crashed" with a traceback, and nothing lost once it is free."""

from __future__ import annotations

import sqlite3

from tests.proc import Daemon, event_pairs

SCENARIO = {
    "threads": [
        {
            "id": "thread_b",
            "runs": [
                {"id": "run_b1", "timeline": [["queued", 2], ["completed", 20]]},
            ],
        }
    ]
}


def test_a_state_file_locked_by_another_process_is_waited_out(sim, tmp_path):
    s = sim(SCENARIO)
    state = tmp_path / "s.db"
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[api]\nbase_url = "{s.base_url}"\n[poll]\ninterval = 0.05\nmax_interval = 0.2\n'
        f'[state]\npath = "{state}"\n[[watch]]\nthread_id = "thread_b"\n'
    )
    d = Daemon("run", "--config", str(cfg))
    try:
        d.wait_log("watching")
        other = sqlite3.connect(state, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # held past the daemon's 5 s busy timeout
        try:
            s.advance(3)  # run_b1 appears: its thread watch must write it down
            d.wait_log("cannot write the state file", timeout=30)
        finally:
            other.execute("ROLLBACK")
            other.close()
        d.wait_for(lambda: ("run_b1", "queued") in event_pairs(d.events), 30, "run_b1")
        assert "bug" not in "".join(d.stderr), "".join(d.stderr)
    finally:
        d.kill()
