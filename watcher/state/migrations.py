"""The state file's schema as an ordered list of small steps, keyed by `PRAGMA user_version`.

A file at version N gets steps N+1 … LATEST, each in its own transaction that also sets
`user_version`, so a crash between two steps leaves a file a later start finishes. Before
the first step runs on a file that holds anything, a copy is written beside it
(`<state>.bak-v<N>`, 0600, through SQLite's backup API).

Two version numbers live in a file, for two kinds of reader:
- `PRAGMA user_version`: the steps applied. A file at a version this release does not know
  is refused (a newer release wrote it), untouched.
- `meta.schema_version`: the lineage a reader must know, the only number the releases
  before this mechanism read (they refuse a file whose value is above 1). It stays 1 while
  every step is one those releases can live with (added tables and columns, kept right by
  triggers); a step that would mislead them raises it, and this release refuses a value
  above `COMPAT` like they do.
- A file with `user_version` 0 and a `meta` table was written before this mechanism: it
  is at version 1, and steps 2 and 3 are idempotent since releases in between may have
  applied them their own way (tables created if missing, a column added if missing).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from watcher.state.outbox_schema import FILL_OUTBOX, OUTBOX_SCHEMA, OUTBOX_WITHOUT_STDOUT
from watcher.state.statefile import StateError, prepare

__all__ = ["COMPAT", "LATEST", "STEPS", "Step", "check", "upgrade", "version"]

#: `meta.schema_version`: the lineage of the schema (see the module docstring).
COMPAT = 1

_SCHEMA_1 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    object_id TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    status TEXT NOT NULL,
    seen TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS objects_run ON objects (thread_id, run_id);
CREATE TABLE IF NOT EXISTS run_watches (
    thread_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    source TEXT NOT NULL,
    include TEXT,
    cursor TEXT,
    done INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (thread_id, run_id)
);
CREATE TABLE IF NOT EXISTS thread_watches (
    thread_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    include TEXT,
    started_at REAL NOT NULL,
    listed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER NOT NULL REFERENCES events (seq),
    sink TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    deadline REAL,
    last_error TEXT,
    PRIMARY KEY (sink, seq)
);
CREATE INDEX IF NOT EXISTS events_run ON events (thread_id, run_id, seq);
CREATE INDEX IF NOT EXISTS deliveries_seq ON deliveries (seq);
CREATE INDEX IF NOT EXISTS deliveries_state ON deliveries (sink, state, seq);
INSERT OR IGNORE INTO meta VALUES ('schema_version', '1');
"""


def _statements(script: str) -> Iterator[str]:
    """The statements of a script one by one (a trigger's body holds semicolons)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending
            pending = ""


def _script(script: str) -> Callable[[sqlite3.Connection, float], None]:
    def apply(db: sqlite3.Connection, now: float) -> None:
        for statement in _statements(script):
            db.execute(statement)

    return apply


def _done_at(db: sqlite3.Connection, now: float) -> None:
    """Runs finished before the column existed count as finished now (for retention)."""
    if "done_at" in {row[1] for row in db.execute("PRAGMA table_info(run_watches)")}:
        return
    db.execute("ALTER TABLE run_watches ADD COLUMN done_at REAL")
    db.execute("UPDATE run_watches SET done_at = ? WHERE done = 1", (now,))


@dataclass(frozen=True, slots=True)
class Step:
    version: int
    title: str
    apply: Callable[[sqlite3.Connection, float], None]


#: In order; a new step goes at the end, with the next version.
STEPS = (
    Step(1, "the first release's schema", _script(_SCHEMA_1)),
    Step(2, "outbox heads and counts, kept by triggers", _script(OUTBOX_SCHEMA + FILL_OUTBOX)),
    Step(3, "run_watches.done_at, for retention", _done_at),
    Step(4, "outbox heads and counts for the webhook only", _script(OUTBOX_WITHOUT_STDOUT)),
)
LATEST = STEPS[-1].version


def _has_meta(db: sqlite3.Connection) -> bool:
    sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    return db.execute(sql).fetchone() is not None


def _tables(db: sqlite3.Connection) -> list[str]:
    sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    return sorted(name for (name,) in db.execute(sql))


def version(db: sqlite3.Connection) -> int:
    """The steps a file has had (0: an empty file; 1: written before `user_version`)."""
    found = int(db.execute("PRAGMA user_version").fetchone()[0])
    return 1 if found == 0 and _has_meta(db) else found


def check(db: sqlite3.Connection, path: str) -> None:
    """`StateError` when a newer release wrote the file (which is not touched)."""
    found = int(db.execute("PRAGMA user_version").fetchone()[0])
    lineage = 0
    if _has_meta(db):
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        lineage = int(row[0]) if row else 0
    if version(db) == 0 and (foreign := _tables(db)):
        raise StateError(
            f"state file {path} holds another program's tables ({', '.join(foreign[:5])}),"
            " not runstep-watcher's: it was left untouched; name a new file in [state] path"
        )
    if found > LATEST or lineage > COMPAT:
        raise StateError(
            f"state file {path} was written by a newer version (schema {lineage}, "
            f"version {found}; this one knows schema {COMPAT}, version {LATEST}); "
            "it was left untouched"
        )


def backup(db: sqlite3.Connection, path: str, at: int) -> Path:
    """A consistent copy of the file as it is, `<path>.bak-v<at>`, private like the file."""
    target = Path(f"{path}.bak-v{at}")
    prepare(target)  # created 0600 (a symlink refused); an older copy is overwritten
    copy = sqlite3.connect(target)
    try:
        db.backup(copy)
    finally:
        copy.close()
    return target


def upgrade(db: sqlite3.Connection, path: str, now: float) -> list[int]:
    """Apply the steps the file lacks, in order, each in a transaction; the versions applied.
    A backup is written first when the file already holds a schema (not `:memory:`)."""
    at = version(db)
    if at >= LATEST:
        return []
    if at > 0 and path != ":memory:":
        backup(db, path, at)
    applied: list[int] = []
    for step in STEPS[at:]:
        db.execute("BEGIN IMMEDIATE")
        try:
            if version(db) < step.version:  # another process may have got here first
                step.apply(db, now)
                db.execute(f"PRAGMA user_version = {step.version:d}")
                applied.append(step.version)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            db.execute("ROLLBACK")
            raise StateError(
                f"state file {path}: step {step.version} ({step.title}) failed: {exc}; "
                f"the file is at version {version(db)}, as before that step"
            ) from None
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return applied
