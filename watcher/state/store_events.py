"""Last reported statuses and the events recorded with them, one transaction per poll.

A detected transition, the object's new status and the outgoing event are written in one
transaction, so a crash at any moment loses nothing; a sink marks an event delivered after
it has gone out, so the only duplicates after a crash carry the same event id.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from watcher.core.events import Event
from watcher.core.transitions import ObjectState
from watcher.state.store_base import Tables
from watcher.state.store_records import PendingEvent

__all__ = ["EventTables"]


class EventTables(Tables):
    """`objects`, `events` and their `deliveries`, one per sink."""

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
        self._unclaim(sink, seqs)
