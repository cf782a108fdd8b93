"""A state file the first release wrote (schema 1) upgrades in place on the first start of
today's daemon, which goes on where the old one stopped: nothing reported twice, the rest
of the run reported once, the pending webhook deliveries sent, the dead letter kept."""

from __future__ import annotations

import shutil
import sqlite3
import stat
from collections import Counter
from pathlib import Path

from tests.proc import Daemon, event_pairs
from tests.receiver import Receiver
from tests.upgrade_scenario import SCENARIO, SECRET, STOPPED_AT, config
from watcher.state.migrations import LATEST

FIXTURE = Path(__file__).parent / "fixtures" / "state-v1.db"


def read(path: Path, sql: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_a_first_release_state_file_upgrades_and_the_daemon_goes_on(sim, tmp_path):
    state = tmp_path / "s.db"
    shutil.copyfile(FIXTURE, state)
    state.chmod(0o600)
    reported = {e for (e,) in read(state, "SELECT event_id FROM events")}
    old_objects = dict(read(state, "SELECT object_id, status FROM objects"))
    pending = {
        e
        for (e,) in read(
            state,
            "SELECT event_id FROM events JOIN deliveries USING (seq) WHERE state = 'pending'",
        )
    }
    [(dead,)] = read(
        state, "SELECT event_id FROM events JOIN deliveries USING (seq) WHERE state = 'dead'"
    )
    assert read(state, "PRAGMA user_version") == [(0,)] and len(pending) == 2

    s = sim(SCENARIO)
    s.advance(STOPPED_AT)  # the API as the first release last saw it
    receiver = Receiver([SECRET])
    d = Daemon("run", "--config", config(tmp_path, s.base_url, receiver.url, state))
    try:
        receiver.wait_for(lambda: pending <= {e["id"] for e in receiver.events()}, 20, "pending")
        s.advance(1.5)
        d.wait_for(lambda: ("step_u2", "in_progress") in event_pairs(d.events))
        s.advance(1.5)
        d.wait_for(lambda: ("run_u1", "completed") in event_pairs(d.events))
        d.wait_for(lambda: ("step_u2", "completed") in event_pairs(d.events))
        new = {e["id"] for e in d.events}
        receiver.wait_for(lambda: len(receiver.received) >= len(pending | new), 20, "the rest")
        undelivered = "SELECT COUNT(*) FROM deliveries WHERE state = 'pending'"
        d.wait_for(lambda: read(state, undelivered) == [(0,)], 20, "deliveries marked done")
        assert d.stop() == 0, d.output()
    finally:
        d.kill()
        receiver.close()

    # the rest of the run, each once; nothing the first release had reported
    assert Counter(event_pairs(d.events)) == Counter(
        {("step_u2", "in_progress"): 1, ("step_u2", "completed"): 1, ("run_u1", "completed"): 1}
    )
    assert not {e["data"]["id"] for e in d.events} & {
        o for o, status in old_objects.items() if status == "completed"
    }
    assert not new & reported
    # at the receiver: the two left pending, then the new events, each once; not the dead one
    ids = [e["id"] for e in receiver.events()]
    assert Counter(ids) == Counter(pending | new) and dead not in ids
    # upgraded in place, with the file as it was kept beside it (private like the file)
    assert read(state, "PRAGMA user_version") == [(LATEST,)]
    assert read(state, "SELECT state, COUNT(*) FROM deliveries GROUP BY state") == [("dead", 1)]
    backup = tmp_path / "s.db.bak-v1"
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert read(backup, "PRAGMA user_version") == [(0,)]
    assert read(backup, "SELECT COUNT(*) FROM deliveries") == [(3,)]
    assert not read(backup, "SELECT 1 FROM sqlite_master WHERE name = 'outbox_heads'")
