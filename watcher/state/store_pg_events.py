"""Statuses and events in PostgreSQL, one transaction per poll, as `store_events` in SQLite."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from watcher.core.events import Event, event_id
from watcher.core.transitions import ObjectState
from watcher.state.store_pg_base import Conn, PgTables
from watcher.state.store_records import PendingEvent

__all__ = ["PgEventTables"]


class PgEventTables(PgTables):
    async def known_states(self, thread_id: str, run_id: str) -> dict[str, ObjectState]:
        rows = await self._all(
            "SELECT object_id, status, seen FROM objects WHERE thread_id = %s AND run_id = %s",
            (thread_id, run_id),
        )
        return {o: ObjectState(s, frozenset(json.loads(seen))) for o, s, seen in rows}

    async def record(
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
        """In one transaction: new statuses, the events with a delivery per sink, the cursor.

        Replicas: the objects' rows are locked first, and an event whose status another
        process has recorded meanwhile is left out, its seq 0 (that process emits it).
        """
        seqs: list[int] = []
        encoded = bodies if bodies is not None else [ev.to_json() for ev in events]
        async with self._tx() as conn:
            recorded = await _claim(conn, thread_id, run_id, updates)
            for ev, body in zip(events, encoded, strict=True):
                if ev.id in recorded:
                    seqs.append(0)
                    continue
                cur = await conn.execute(
                    "INSERT INTO events (event_id, thread_id, run_id, type, body, created_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s) RETURNING seq",
                    (ev.id, ev.thread_id, ev.run_id, ev.type, body, ev.created_at),
                )
                row = await cur.fetchone()
                seq = int(row[0]) if row else 0
                seqs.append(seq)
                if sinks:
                    await conn.cursor().executemany(
                        "INSERT INTO deliveries (seq, sink, deadline) VALUES (%s, %s, %s)",
                        [(seq, s, (deadlines or {}).get(s)) for s in sinks],
                    )
            await conn.execute(
                "UPDATE run_watches SET cursor = %s, done = %s,"
                " done_at = CASE WHEN %s THEN COALESCE(done_at, %s) END"
                " WHERE thread_id = %s AND run_id = %s",
                (cursor, int(done), done, time.time(), thread_id, run_id),
            )
        return seqs

    async def pending(self, sink: str, *, limit: int = 1000) -> list[PendingEvent]:
        rows = await self._all(
            "SELECT e.seq, e.event_id, e.thread_id, e.run_id, e.body FROM deliveries d"
            " JOIN events e ON e.seq = d.seq WHERE d.sink = %s AND d.state = 'pending'"
            " ORDER BY e.seq LIMIT %s",
            (sink, limit),
        )
        return [PendingEvent(*row) for row in rows]

    async def mark_delivered(self, sink: str, seqs: Sequence[int]) -> None:
        """Delivered: the delivery row goes, and the event too once no sink still needs it."""
        await self._drop(sink, list(seqs))

    async def _drop(self, sink: str, seqs: list[int]) -> None:
        """Deliveries of `sink` deleted, and their events once no sink needs them."""
        async with self._tx() as conn:
            await conn.execute(
                "DELETE FROM deliveries WHERE sink = %s AND seq = ANY(%s)", (sink, seqs)
            )
            await conn.execute(
                "DELETE FROM events e WHERE seq = ANY(%s) AND NOT EXISTS"
                " (SELECT 1 FROM deliveries d WHERE d.seq = e.seq)",
                (seqs,),
            )


async def _claim(
    conn: Conn, thread_id: str, run_id: str, updates: dict[str, ObjectState]
) -> set[str]:
    """The objects' new statuses written, their rows locked to the end of the transaction;
    the ids of events another process recorded first (statuses already in `seen`)."""
    if not updates:
        return set()
    ids = list(updates)
    seen = [json.dumps(sorted(updates[o].seen)) for o in ids]
    cur = await conn.execute(
        "INSERT INTO objects (object_id, thread_id, run_id, status, seen)"
        " SELECT o, %s, %s, s, n FROM unnest(%s::text[], %s::text[], %s::text[]) AS u(o, s, n)"
        " ON CONFLICT (object_id) DO NOTHING RETURNING object_id",
        (thread_id, run_id, ids, [updates[o].status for o in ids], seen),
    )
    created = {o for (o,) in await cur.fetchall()}
    cur = await conn.execute(
        "SELECT object_id, seen FROM objects WHERE object_id = ANY(%s) FOR UPDATE",
        ([o for o in ids if o not in created],),
    )
    recorded: set[str] = set()
    for oid, raw in await cur.fetchall():
        before = frozenset(json.loads(raw))
        recorded |= {event_id(oid, status) for status in before}
        new = updates[oid]
        if not new.seen <= before:  # something this process saw first
            await conn.execute(
                "UPDATE objects SET status = %s, seen = %s WHERE object_id = %s",
                (new.status, json.dumps(sorted(before | new.seen)), oid),
            )
    return recorded
