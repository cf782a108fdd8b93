"""The state file's versioned migrations, on files on disk: a backup first, each step in a
transaction, a newer file refused untouched."""

from __future__ import annotations

import shutil
import sqlite3
import stat
from pathlib import Path

import pytest

from tests.cli import run_cli
from tests.test_state_errors import config
from watcher.state.astore import AsyncStore
from watcher.state.migrations import LATEST, STEPS
from watcher.state.store import StateError, Store
from watcher.state.store_protocol import StoreError

FIXTURE = Path(__file__).parent / "fixtures" / "state-v1.db"


def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def change(path: Path, *statements: str) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    for sql in statements:
        db.execute(sql)
    db.close()


def dump(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return list(db.iterdump())
    finally:
        db.close()


def test_steps_are_numbered_in_order():
    assert [s.version for s in STEPS] == list(range(1, LATEST + 1))


def test_a_new_file_gets_every_step_and_no_backup(tmp_path):
    Store(tmp_path / "s.db").close()
    assert query(tmp_path / "s.db", "PRAGMA user_version") == [(LATEST,)]
    assert query(tmp_path / "s.db", "SELECT value FROM meta") == [("1",)]
    assert list(tmp_path.glob("s.db.bak-*")) == []


def test_an_old_file_is_backed_up_once_then_upgraded(tmp_path):
    state = tmp_path / "s.db"
    shutil.copyfile(FIXTURE, state)
    before = dump(state)
    Store(state).close()
    backup = tmp_path / "s.db.bak-v1"
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert dump(backup) == before
    assert query(state, "PRAGMA user_version") == [(LATEST,)]
    assert query(state, "SELECT state, n FROM outbox_counts ORDER BY state") == [
        ("dead", 1),
        ("pending", 2),
    ]
    assert query(state, "SELECT seq FROM outbox_heads") == [(2,)]  # the run's oldest pending
    backup.unlink()
    Store(state).close()  # at the latest version: nothing to do, no backup
    assert not backup.exists()


def test_a_file_left_between_two_steps_gets_the_rest(tmp_path):
    state = tmp_path / "s.db"
    store = Store(state)
    store.add_run_watch("thread_1", "run_1", "api")
    store.close()
    change(state, "ALTER TABLE run_watches DROP COLUMN done_at", "PRAGMA user_version = 2")
    Store(state).close()
    assert query(state, "PRAGMA user_version") == [(LATEST,)]
    assert query(state, "SELECT run_id, done_at FROM run_watches") == [("run_1", None)]
    assert query(tmp_path / "s.db.bak-v2", "PRAGMA user_version") == [(2,)]


def test_a_failing_step_is_rolled_back_and_the_file_kept_as_it_was(tmp_path):
    state = tmp_path / "s.db"
    shutil.copyfile(FIXTURE, state)
    change(state, "CREATE TABLE outbox_heads (x)")  # in the way of step 2
    before = dump(state)
    with pytest.raises(StateError, match=r"step 2 .* failed: no such column"):
        Store(state)
    assert dump(state) == before  # nothing of step 2, and step 3 never ran
    assert query(state, "PRAGMA user_version") == [(0,)]
    assert dump(tmp_path / "s.db.bak-v1") == before


def test_a_newer_version_is_refused_and_the_file_untouched(tmp_path):
    state = tmp_path / "s.db"
    Store(state).close()
    change(state, f"PRAGMA user_version = {LATEST + 1}")
    before = state.read_bytes()
    with pytest.raises(StateError, match="newer version"):
        Store(state)
    assert state.read_bytes() == before
    assert list(tmp_path.glob("s.db.bak-*")) == []


def test_the_daemon_exits_73_on_a_newer_file_or_a_failed_step(tmp_path):
    newer = tmp_path / "newer.db"
    Store(newer).close()
    change(newer, f"PRAGMA user_version = {LATEST + 1}")
    broken = tmp_path / "broken.db"
    shutil.copyfile(FIXTURE, broken)
    change(broken, "CREATE TABLE outbox_heads (x)")
    for state, says in ((newer, "newer version"), (broken, "at version 1, as before that step")):
        before = dump(state)
        result = run_cli(
            "run", "--config", config(tmp_path, state), OPENAI_BASE_URL="http://127.0.0.1:9/v1"
        )
        assert result.returncode == 73, result.stderr
        assert says in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert dump(state) == before


@pytest.mark.anyio
async def test_a_failed_write_comes_out_as_the_stores_own_error(tmp_path):
    store = AsyncStore(Store(tmp_path / "s.db"))
    change(tmp_path / "s.db", "DROP TABLE meta")  # another hand breaks the file meanwhile
    with pytest.raises(StoreError, match="no such table: meta") as caught:
        await store.set_meta("k", "v")
    assert not isinstance(caught.value, sqlite3.Error)
    store.sync.close()


def test_step_4_leaves_the_outbox_to_the_webhook_and_stdout_still_replays(tmp_path):
    """A file at version 3 kept heads and counts for stdout too; after step 4 only the
    webhook has them, and what either sink has not taken is still there for it."""
    state = tmp_path / "s.db"
    db = sqlite3.connect(state, isolation_level=None)
    for step in STEPS[:3]:
        step.apply(db, 0.0)
    db.execute("PRAGMA user_version = 3")
    for seq, run in ((1, "run_1"), (2, "run_1"), (3, "run_2")):
        db.execute(
            "INSERT INTO events VALUES (?, ?, 'thread_1', ?, 't', '{}', 0)",
            (seq, f"evt_{seq}", run),
        )
        db.executemany(
            "INSERT INTO deliveries (seq, sink) VALUES (?, ?)", [(seq, "stdout"), (seq, "webhook")]
        )
    db.close()
    assert query(state, "SELECT COUNT(*) FROM outbox_heads WHERE sink = 'stdout'") == [(2,)]

    store = Store(state)
    assert query(state, "SELECT sink, seq FROM outbox_heads ORDER BY seq") == [
        ("webhook", 1),
        ("webhook", 3),
    ]
    assert query(state, "SELECT sink, state, n FROM outbox_counts") == [("webhook", "pending", 3)]
    assert [e.seq for e in store.pending("stdout")] == [1, 2, 3]
    store.mark_delivered("stdout", [1, 2, 3])
    assert [h.seq for h in store.due_heads("webhook", 1.0)] == [1, 3]
    store.mark_delivered("webhook", [1])
    assert [h.seq for h in store.due_heads("webhook", 1.0)] == [2, 3]
    assert store.queue_depth("webhook") == {"pending": 2, "dead": 0}
    store.close()
    assert query(state, "SELECT COUNT(*) FROM outbox_heads WHERE sink = 'stdout'") == [(0,)]
