"""The SQLite state file: last reported statuses, watches, and events not yet delivered.

A detected transition, the object's new status and the outgoing event are written in one
transaction, so a crash at any moment loses nothing; a sink marks an event delivered after
it has gone out, so the only duplicates after a crash carry the same event id.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from watcher.events import Event
from watcher.outbox_schema import FILL_OUTBOX, OUTBOX_SCHEMA
from watcher.retention import migrate, prune
from watcher.statefile import StateError, prepare
from watcher.transitions import ObjectState

__all__ = [
    "SCHEMA_VERSION",
    "OutboxItem",
    "PendingEvent",
    "RunWatch",
    "StateError",
    "Store",
    "ThreadWatch",
]

SCHEMA_VERSION = 1

_SCHEMA = """
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
"""


@dataclass(frozen=True, slots=True)
class RunWatch:
    thread_id: str
    run_id: str
    source: str  # "config", "thread", "api", "cli"
    include: tuple[str, ...] | None
    cursor: str | None
    done: bool


@dataclass(frozen=True, slots=True)
class ThreadWatch:
    thread_id: str
    source: str
    include: tuple[str, ...] | None
    started_at: float
    listed: bool


@dataclass(frozen=True, slots=True)
class PendingEvent:
    seq: int
    event_id: str
    thread_id: str
    run_id: str
    body: str


@dataclass(frozen=True, slots=True)
class OutboxItem:
    seq: int
    event_id: str
    thread_id: str
    run_id: str
    type: str
    body: str
    created_at: int
    state: str
    attempts: int
    next_attempt_at: float
    deadline: float | None
    last_error: str | None


def _include(raw: str | None) -> tuple[str, ...] | None:
    return None if raw is None else tuple(json.loads(raw))


def _include_text(include: Sequence[str] | None) -> str | None:
    return None if include is None else json.dumps(list(include))


class Store:
    """One SQLite file (WAL). All methods are short synchronous transactions."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        prepare(self.path)  # 0600 (directory 0700) whatever the umask; no symlink
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout = 5000")
            version = self._read_version()
            if version is not None and version > SCHEMA_VERSION:
                self._db.close()
                raise StateError(
                    f"state file {self.path} was written by a newer version "
                    f"(schema {version}, this one knows {SCHEMA_VERSION}); it was left untouched"
                )
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.executescript(_SCHEMA)
            self._add_outbox_heads()
            migrate(self._db, time.time())
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        except sqlite3.DatabaseError as exc:
            raise StateError(f"state file {self.path}: {exc}") from None

    def _add_outbox_heads(self) -> None:
        """The outbox heads table, its indexes and triggers; filled once if it is new."""
        new = not self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox_counts'"
        ).fetchone()
        fill = FILL_OUTBOX + ";" if new else ""  # idempotent: a race only repeats it
        self._db.executescript(f"BEGIN IMMEDIATE; {OUTBOX_SCHEMA} {fill} COMMIT;")

    def _read_version(self) -> int | None:
        try:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise
        return int(row[0]) if row else None

    def close(self) -> None:
        self._db.close()

    def get_meta(self, key: str) -> str | None:
        """A value kept across restarts (e.g. the end of a 429 pause), None when unset."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # -- watches -------------------------------------------------------------------------

    def add_run_watch(
        self, thread_id: str, run_id: str, source: str, include: Sequence[str] | None = None
    ) -> bool:
        """Add a run watch if new; return whether it was added."""
        cur = self._db.execute(
            "INSERT OR IGNORE INTO run_watches (thread_id, run_id, source, include)"
            " VALUES (?, ?, ?, ?)",
            (thread_id, run_id, source, _include_text(include)),
        )
        return cur.rowcount > 0

    def mark_runs_ignored(self, thread_id: str, run_ids: Iterable[str]) -> None:
        """Runs a thread watch found already finished: remembered, never reported."""
        with self._tx():
            self._db.executemany(
                "INSERT OR IGNORE INTO run_watches (thread_id, run_id, source, done, done_at)"
                " VALUES (?, ?, 'ignored', 1, ?)",
                [(thread_id, r, time.time()) for r in run_ids],
            )

    def remove_run_watch(self, thread_id: str, run_id: str) -> None:
        self._db.execute(
            "DELETE FROM run_watches WHERE thread_id = ? AND run_id = ?", (thread_id, run_id)
        )

    def run_watches(self, *, active_only: bool = False) -> list[RunWatch]:
        sql = "SELECT thread_id, run_id, source, include, cursor, done FROM run_watches"
        if active_only:
            sql += " WHERE done = 0"
        return [
            RunWatch(t, r, s, _include(i), c, bool(d))
            for t, r, s, i, c, d in self._db.execute(sql + " ORDER BY rowid")
        ]

    def add_thread_watch(
        self, thread_id: str, source: str, started_at: float, include: Sequence[str] | None = None
    ) -> bool:
        cur = self._db.execute(
            "INSERT OR IGNORE INTO thread_watches (thread_id, source, include, started_at)"
            " VALUES (?, ?, ?, ?)",
            (thread_id, source, _include_text(include), started_at),
        )
        return cur.rowcount > 0

    def remove_thread_watch(self, thread_id: str) -> None:
        self._db.execute("DELETE FROM thread_watches WHERE thread_id = ?", (thread_id,))

    def thread_watches(self) -> list[ThreadWatch]:
        rows = self._db.execute(
            "SELECT thread_id, source, include, started_at, listed FROM thread_watches"
            " ORDER BY rowid"
        )
        return [ThreadWatch(t, s, _include(i), a, bool(x)) for t, s, i, a, x in rows]

    def set_config_include(
        self, thread_id: str, run_id: str | None, include: Sequence[str] | None
    ) -> bool:
        """A config watch's `include` as the config now says (a thread watch's runs follow);
        whether it changed."""
        value = _include_text(include)
        with self._tx():
            if run_id:
                return (
                    self._db.execute(
                        "UPDATE run_watches SET include = ? WHERE thread_id = ? AND run_id = ?"
                        " AND source = 'config' AND include IS NOT ?",
                        (value, thread_id, run_id, value),
                    ).rowcount
                    > 0
                )
            changed = self._db.execute(
                "UPDATE thread_watches SET include = ? WHERE thread_id = ?"
                " AND source = 'config' AND include IS NOT ?",
                (value, thread_id, value),
            ).rowcount
            if changed:
                self._db.execute(
                    "UPDATE run_watches SET include = ? WHERE thread_id = ? AND source = 'thread'",
                    (value, thread_id),
                )
            return changed > 0

    def watch_page(
        self, *, finished: bool, after: tuple[str, str] | None, limit: int
    ) -> list[tuple[str, str | None, str, bool]]:
        """(thread_id, run_id or None, source, done) ordered by (thread_id, run_id), after
        the `after` key (a thread watch's run_id is ""); finished runs only if asked."""
        rows = self._db.execute(
            "SELECT thread_id, run_id, source, done FROM ("
            " SELECT thread_id, '' AS run_id, source, 0 AS done FROM thread_watches"
            " UNION ALL SELECT thread_id, run_id, source, done FROM run_watches"
            " WHERE source != 'ignored' AND (done = 0 OR ?))"
            " WHERE (thread_id, run_id) > (?, ?) ORDER BY thread_id, run_id LIMIT ?",
            (int(finished), *(after or ("", "")), limit),
        )
        return [(t, r or None, s, bool(d)) for t, r, s, d in rows]

    def watch_count(self) -> int:
        """How many watches `watch_page(finished=True)` lists, in all."""
        row = self._db.execute(
            "SELECT (SELECT COUNT(*) FROM thread_watches)"
            " + (SELECT COUNT(*) FROM run_watches WHERE source != 'ignored')"
        ).fetchone()
        return int(row[0])

    def has_watch(self, thread_id: str, run_id: str | None) -> bool:
        if not run_id:
            sql = "SELECT 1 FROM thread_watches WHERE thread_id = ?"
            return self._db.execute(sql, (thread_id,)).fetchone() is not None
        sql = "SELECT 1 FROM run_watches WHERE thread_id = ? AND run_id = ? AND source != 'ignored'"
        return self._db.execute(sql, (thread_id, run_id)).fetchone() is not None

    def mark_thread_listed(self, thread_id: str) -> None:
        self._db.execute("UPDATE thread_watches SET listed = 1 WHERE thread_id = ?", (thread_id,))

    def runs_of_thread(self, thread_id: str) -> set[str]:
        rows = self._db.execute("SELECT run_id FROM run_watches WHERE thread_id = ?", (thread_id,))
        return {r for (r,) in rows}

    # -- object states and events ---------------------------------------------------------

    def known_states(self, thread_id: str, run_id: str) -> dict[str, ObjectState]:
        rows = self._db.execute(
            "SELECT object_id, status, seen FROM objects WHERE thread_id = ? AND run_id = ?",
            (thread_id, run_id),
        )
        return {o: ObjectState(s, frozenset(json.loads(seen))) for o, s, seen in rows}

    def record(
        self,
        thread_id: str,
        run_id: str,
        events: Sequence[Event],
        updates: dict[str, ObjectState],
        *,
        cursor: str | None,
        done: bool,
        sinks: Sequence[str],
        deadlines: dict[str, float] | None = None,
        bodies: Sequence[str] | None = None,
    ) -> list[int]:
        """In one transaction: new statuses, the events with a delivery per sink, the cursor."""
        seqs: list[int] = []
        with self._tx():
            self._db.executemany(
                "INSERT INTO objects (object_id, thread_id, run_id, status, seen)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (object_id) DO UPDATE"
                " SET status = excluded.status, seen = excluded.seen",
                [
                    (oid, thread_id, run_id, st.status, json.dumps(sorted(st.seen)))
                    for oid, st in updates.items()
                ],
            )
            encoded = bodies if bodies is not None else [ev.to_json() for ev in events]
            for ev, body in zip(events, encoded, strict=True):
                cur = self._db.execute(
                    "INSERT INTO events (event_id, thread_id, run_id, type, body, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (ev.id, ev.thread_id, ev.run_id, ev.type, body, ev.created_at),
                )
                seq = int(cur.lastrowid or 0)
                seqs.append(seq)
                self._db.executemany(
                    "INSERT INTO deliveries (seq, sink, deadline) VALUES (?, ?, ?)",
                    [(seq, s, (deadlines or {}).get(s)) for s in sinks],
                )
            self._db.execute(
                "UPDATE run_watches SET cursor = ?, done = ?,"
                " done_at = CASE WHEN ? THEN COALESCE(done_at, ?) END"
                " WHERE thread_id = ? AND run_id = ?",
                (cursor, int(done), int(done), time.time(), thread_id, run_id),
            )
        return seqs

    def pending(self, sink: str, *, limit: int = 1000) -> list[PendingEvent]:
        rows = self._db.execute(
            "SELECT e.seq, e.event_id, e.thread_id, e.run_id, e.body FROM deliveries d"
            " JOIN events e ON e.seq = d.seq WHERE d.sink = ? AND d.state = 'pending'"
            " ORDER BY e.seq LIMIT ?",
            (sink, limit),
        )
        return [PendingEvent(*row) for row in rows]

    def mark_delivered(self, sink: str, seqs: Sequence[int]) -> None:
        """Delivered: the delivery row goes, and the event too once no sink still needs it."""
        with self._tx():
            self._db.executemany(
                "DELETE FROM deliveries WHERE sink = ? AND seq = ?", [(sink, s) for s in seqs]
            )
            self._db.executemany(
                "DELETE FROM events WHERE seq = ? AND NOT EXISTS"
                " (SELECT 1 FROM deliveries WHERE deliveries.seq = events.seq)",
                [(s,) for s in seqs],
            )

    # -- the webhook outbox -------------------------------------------------------------------

    def due_heads(self, sink: str, now: float, *, limit: int = 100) -> list[OutboxItem]:
        """The oldest pending event of each run, if due: a failing one holds back its run only.

        Earliest due first (never tried: due at 0, oldest first); read from the heads index.
        """
        rows = self._db.execute(
            "SELECT e.seq, e.event_id, e.thread_id, e.run_id, e.type, e.body, e.created_at,"
            " d.state, d.attempts, d.next_attempt_at, d.deadline, d.last_error"
            " FROM outbox_heads h JOIN deliveries d ON d.sink = h.sink"
            " AND d.seq = h.seq JOIN events e ON e.seq = h.seq"
            " WHERE h.sink = ? AND h.due <= ? ORDER BY h.due, h.seq LIMIT ?",
            (sink, now, limit),
        )
        return [OutboxItem(*row) for row in rows]

    def oldest_head(self, sink: str) -> OutboxItem | None:
        """The oldest pending event, due or not (the probe of a failing endpoint)."""
        row = self._db.execute(
            "SELECT e.seq, e.event_id, e.thread_id, e.run_id, e.type, e.body, e.created_at,"
            " d.state, d.attempts, d.next_attempt_at, d.deadline, d.last_error"
            " FROM outbox_heads h JOIN deliveries d ON d.sink = h.sink"
            " AND d.seq = h.seq JOIN events e ON e.seq = h.seq"
            " WHERE h.sink = ? ORDER BY h.seq LIMIT 1",
            (sink,),
        ).fetchone()
        return None if row is None else OutboxItem(*row)

    def next_due(self, sink: str) -> float | None:
        """When the next head is due (0: now), or None when nothing is pending."""
        row = self._db.execute(
            "SELECT MIN(due) FROM outbox_heads WHERE sink = ?", (sink,)
        ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def release(self, sink: str, now: float, *, limit: int = 500) -> int:
        """Up to `limit` heads waiting on their schedule due at once (the endpoint answers
        again), those due soonest first; how many (`limit`: call again for the rest)."""
        return self._db.execute(
            "UPDATE deliveries SET next_attempt_at = 0 WHERE sink = ? AND seq IN"
            " (SELECT seq FROM outbox_heads WHERE sink = ? AND due > ? ORDER BY due LIMIT ?)",
            (sink, sink, now, limit),
        ).rowcount

    def note_failure(self, sink: str, seq: int, *, error: str) -> None:
        """A failed probe: the error is kept; the schedule and the attempts are not touched."""
        self._db.execute(
            "UPDATE deliveries SET last_error = ? WHERE sink = ? AND seq = ?",
            (error[:500], sink, seq),
        )

    def reschedule(self, sink: str, seq: int, *, at: float, error: str) -> None:
        self._db.execute(
            "UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?"
            " WHERE sink = ? AND seq = ?",
            (at, error[:500], sink, seq),
        )

    def mark_dead(self, sink: str, seq: int, *, error: str) -> None:
        self._db.execute(
            "UPDATE deliveries SET state = 'dead', attempts = attempts + 1, last_error = ?"
            " WHERE sink = ? AND seq = ?",
            (error[:500], sink, seq),
        )

    def queue_depth(self, sink: str) -> dict[str, int]:
        rows = self._db.execute("SELECT state, n FROM outbox_counts WHERE sink = ?", (sink,))
        depth = {"pending": 0, "dead": 0}
        depth.update({state: int(n) for state, n in rows})
        return depth

    def outbox(self, sink: str) -> list[OutboxItem]:
        rows = self._db.execute(
            "SELECT e.seq, e.event_id, e.thread_id, e.run_id, e.type, e.body, e.created_at,"
            " d.state, d.attempts, d.next_attempt_at, d.deadline, d.last_error"
            " FROM deliveries d JOIN events e ON e.seq = d.seq WHERE d.sink = ? ORDER BY d.seq",
            (sink,),
        )
        return [OutboxItem(*row) for row in rows]

    def purge(self, sink: str, *, before: float | None = None) -> int:
        """Dead letters dropped (of events created before `before`); how many."""
        sql = "SELECT seq FROM deliveries WHERE sink = ? AND state = 'dead'"
        params: list[object] = [sink]
        if before is not None:
            sql += " AND seq IN (SELECT seq FROM events WHERE created_at < ?)"
            params.append(before)
        with self._tx():
            seqs = [(seq,) for (seq,) in self._db.execute(sql, params)]
            self._db.executemany(
                "DELETE FROM deliveries WHERE sink = ? AND seq = ?",
                [(sink, seq) for (seq,) in seqs],
            )
            self._db.executemany(
                "DELETE FROM events WHERE seq = ? AND NOT EXISTS"
                " (SELECT 1 FROM deliveries WHERE deliveries.seq = events.seq)",
                seqs,
            )
        return len(seqs)

    def replay(
        self,
        sink: str,
        *,
        deadline: float,
        event_id: str | None = None,
        since: float | None = None,
    ) -> int:
        """Dead letters back to pending, due at once, with a fresh deadline; how many."""
        sql = (
            "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = 0,"
            " deadline = ? WHERE sink = ? AND state = 'dead'"
        )
        params: list[object] = [deadline, sink]
        if event_id is not None:
            sql += " AND seq IN (SELECT seq FROM events WHERE event_id = ?)"
            params.append(event_id)
        if since is not None:
            sql += " AND seq IN (SELECT seq FROM events WHERE created_at >= ?)"
            params.append(since)
        return self._db.execute(sql, params).rowcount

    def prune(self, cutoff: float) -> Iterator[int]:
        """What finished before `cutoff` goes, one short transaction per step (`retention`)."""
        return prune(self._db, cutoff)

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
