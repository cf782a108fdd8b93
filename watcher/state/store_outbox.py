"""The webhook outbox: due heads per run, retries, dead letters, replay and purge.

A sink claims the heads it delivers (`claim_due_heads`), as replicas sharing PostgreSQL do
(`store_pg_outbox`): a claimed head is not due for anyone until its claim expires or an
outcome is written for it. One process keeps a state file, so its claims live in memory.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from watcher.state.store_base import Tables
from watcher.state.store_records import OutboxItem

_HEADS = (
    "SELECT e.seq, e.event_id, e.thread_id, e.run_id, e.type, e.body, e.created_at,"
    " d.state, d.attempts, d.next_attempt_at, d.deadline, d.last_error"
    " FROM outbox_heads h JOIN deliveries d ON d.sink = h.sink"
    " AND d.seq = h.seq JOIN events e ON e.seq = h.seq"
)

__all__ = ["OutboxTables"]


class OutboxTables(Tables):
    """`deliveries` as a queue, read through `outbox_heads` and `outbox_counts`."""

    def due_heads(self, sink: str, now: float, *, limit: int = 100) -> list[OutboxItem]:
        """The oldest pending event of each run, if due: a failing one holds back its run only.

        Earliest due first (never tried: due at 0, oldest first); read from the heads index.
        Claimed heads are not due until their claim expires.
        """
        held = self._held(sink, now)
        rows = self._db.execute(
            "SELECT e.seq, e.event_id, e.thread_id, e.run_id, e.type, e.body, e.created_at,"
            " d.state, d.attempts, d.next_attempt_at, d.deadline, d.last_error"
            " FROM outbox_heads h JOIN deliveries d ON d.sink = h.sink"
            " AND d.seq = h.seq JOIN events e ON e.seq = h.seq"
            " WHERE h.sink = ? AND h.due <= ? ORDER BY h.due, h.seq LIMIT ?",
            (sink, now, limit + len(held)),
        )
        items = [OutboxItem(*row) for row in rows]
        return [i for i in items if i.seq not in held][:limit] if held else items

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

    def claim_due_heads(
        self, sink: str, owner: str, now: float, *, hold: float, limit: int = 100
    ) -> list[OutboxItem]:
        """`due_heads` not claimed, each now claimed until `now + hold` (`owner`: one
        process, one owner of the file)."""
        taken = self.due_heads(sink, now, limit=limit)
        self._claims.update(((sink, h.seq), (now + hold, owner)) for h in taken)
        return taken

    def claim_oldest_head(
        self, sink: str, owner: str, now: float, *, hold: float
    ) -> OutboxItem | None:
        """`oldest_head` not claimed (the probe of a failing endpoint), now claimed."""
        held = self._held(sink, now)
        rows = self._db.execute(
            _HEADS + " WHERE h.sink = ? ORDER BY h.seq LIMIT ?", (sink, 1 + len(held))
        )
        for row in rows:
            item = OutboxItem(*row)
            if item.seq not in held:
                self._claims[(sink, item.seq)] = (now + hold, owner)
                return item
        return None

    def _held(self, sink: str, now: float) -> set[int]:
        """The heads of `sink` claimed until after `now` (expired claims dropped)."""
        if not self._claims:
            return set()
        for key in [k for k, (until, _) in self._claims.items() if until <= now]:
            del self._claims[key]
        return {seq for s, seq in self._claims if s == sink}

    def unclaim(self, sink: str, owner: str, seqs: Sequence[int] | None = None) -> int:
        """`owner`'s claims (on `seqs`, or all) ended with no outcome (not started, or a
        clean stop): those heads are due again on their schedule; how many."""
        mine = [
            key
            for key, (_, by) in self._claims.items()
            if key[0] == sink and by == owner and (seqs is None or key[1] in seqs)
        ]
        for key in mine:
            del self._claims[key]
        return len(mine)

    def next_due(self, sink: str) -> float | None:
        """When the next head is due (0: now), or None when nothing is pending; a claimed
        head is due when its claim expires."""
        claims = {seq: until for (s, seq), (until, _) in self._claims.items() if s == sink}
        if claims:
            row = self._db.execute(  # in the index's order: the first one not claimed
                "SELECT due FROM outbox_heads WHERE sink = ?"
                " AND seq NOT IN (SELECT value FROM json_each(?)) ORDER BY due LIMIT 1",
                (sink, json.dumps(sorted(claims))),
            ).fetchone()
            ends = min(claims.values())
            return ends if row is None or row[0] is None else min(ends, float(row[0]))
        row = self._db.execute(
            "SELECT MIN(due) FROM outbox_heads WHERE sink = ?", (sink,)
        ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def release(self, sink: str, now: float, *, limit: int = 500) -> int:
        """Up to `limit` heads waiting on their schedule due at once (the endpoint answers
        again), those due soonest first; how many (`limit`: call again for the rest).
        Claimed heads (in flight) are left alone."""
        held = json.dumps(sorted(self._held(sink, now)))
        return self._db.execute(
            "UPDATE deliveries SET next_attempt_at = 0 WHERE sink = ? AND seq IN"
            " (SELECT seq FROM outbox_heads WHERE sink = ? AND due > ?"
            " AND seq NOT IN (SELECT value FROM json_each(?)) ORDER BY due LIMIT ?)",
            (sink, sink, now, held, limit),
        ).rowcount

    def note_failure(self, sink: str, seq: int, *, error: str) -> None:
        """A failed probe: the error is kept; the schedule and the attempts are not touched."""
        self._db.execute(
            "UPDATE deliveries SET last_error = ? WHERE sink = ? AND seq = ?",
            (error[:500], sink, seq),
        )
        self._unclaim(sink, [seq])

    def reschedule(self, sink: str, seq: int, *, at: float, error: str) -> None:
        self._db.execute(
            "UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?"
            " WHERE sink = ? AND seq = ?",
            (at, error[:500], sink, seq),
        )
        self._unclaim(sink, [seq])

    def mark_dead(self, sink: str, seq: int, *, error: str) -> None:
        self._db.execute(
            "UPDATE deliveries SET state = 'dead', attempts = attempts + 1, last_error = ?"
            " WHERE sink = ? AND seq = ?",
            (error[:500], sink, seq),
        )
        self._unclaim(sink, [seq])

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
