"""The webhook outbox in PostgreSQL, read through `outbox_heads` and `outbox_counts` (kept
by the trigger of `migrations_pg`), as `store_outbox` in SQLite.

Replicas share the outbox through claims: a replica takes due heads (`FOR UPDATE SKIP
LOCKED`: two taking at once never wait on, nor take, the same heads) and each is its own
until `now + hold` (`claimed_by`, `claimed_until`; the head's `due` is then the claim's
expiry);
the others do not see it as due before, and take it over after (a replica died mid-way).
Any outcome written for the head (delivered, rescheduled, dead, a failed probe) ends the
claim (the trigger of step 5, `outbox_claims_pg`). Only a run's head is ever claimed, and
its next event becomes head once it is done: one replica at a time per run, in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import LiteralString

from watcher.state.store_pg_base import PgTables
from watcher.state.store_records import OutboxItem

__all__ = ["PgOutboxTables"]

_ITEM: LiteralString = (
    "SELECT e.seq, e.event_id, e.thread_id, e.run_id, e.type, e.body, e.created_at,"
    " d.state, d.attempts, d.next_attempt_at, d.deadline, d.last_error"
)
_HEADS: LiteralString = (
    _ITEM + " FROM outbox_heads h JOIN deliveries d ON d.sink = h.sink"
    " AND d.seq = h.seq JOIN events e ON e.seq = h.seq"
)


class PgOutboxTables(PgTables):
    async def due_heads(self, sink: str, now: float, *, limit: int = 100) -> list[OutboxItem]:
        rows = await self._all(
            _HEADS + " WHERE h.sink = %s AND h.due <= %s ORDER BY h.due, h.seq LIMIT %s",
            (sink, now, limit),
        )
        return [OutboxItem(*row) for row in rows]

    async def claim_due_heads(
        self, sink: str, owner: str, now: float, *, hold: float, limit: int = 100
    ) -> list[OutboxItem]:
        """`due_heads`, each now claimed by `owner` until `now + hold` (not due for anyone
        before: `hold` must outlast an attempt); heads another is taking are skipped."""
        rows = await self._all(
            "WITH c AS (SELECT sink, thread_id, run_id, seq, due FROM outbox_heads"
            " WHERE sink = %s AND due <= %s ORDER BY due, seq LIMIT %s FOR UPDATE SKIP LOCKED),"
            " u AS (UPDATE outbox_heads h SET due = %s, claimed_by = %s, claimed_until = %s"
            " FROM c WHERE h.sink = c.sink AND h.thread_id = c.thread_id"
            " AND h.run_id = c.run_id RETURNING c.seq, c.due)"
            " SELECT e.seq, e.event_id, e.thread_id, e.run_id, e.type, e.body, e.created_at,"
            " d.state, d.attempts, d.next_attempt_at, d.deadline, d.last_error"
            " FROM u JOIN deliveries d ON d.sink = %s AND d.seq = u.seq"
            " JOIN events e ON e.seq = u.seq ORDER BY u.due, u.seq",
            (sink, now, limit, now + hold, owner, now + hold, sink),
        )
        return [OutboxItem(*row) for row in rows]

    async def claim_oldest_head(
        self, sink: str, owner: str, now: float, *, hold: float
    ) -> OutboxItem | None:
        """`oldest_head` not claimed by another (the probe of a failing endpoint), now
        claimed by `owner` until `now + hold` (if that replica dies, the head is due on its
        schedule, as it was: no sooner than the claim's expiry)."""
        row = await self._one(
            "WITH c AS (SELECT sink, thread_id, run_id, seq, due FROM outbox_heads"
            " WHERE sink = %s AND (claimed_by IS NULL OR claimed_until <= %s)"
            " ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED),"
            " u AS (UPDATE outbox_heads h SET due = GREATEST(h.due, %s), claimed_by = %s,"
            " claimed_until = %s FROM c WHERE h.sink = c.sink AND h.thread_id = c.thread_id"
            " AND h.run_id = c.run_id RETURNING c.seq, c.due)"
            " SELECT e.seq, e.event_id, e.thread_id, e.run_id, e.type, e.body, e.created_at,"
            " d.state, d.attempts, d.next_attempt_at, d.deadline, d.last_error"
            " FROM u JOIN deliveries d ON d.sink = %s AND d.seq = u.seq"
            " JOIN events e ON e.seq = u.seq ORDER BY u.due, u.seq",
            (sink, now, now + hold, owner, now + hold, sink),
        )
        return None if row is None else OutboxItem(*row)

    async def unclaim(self, sink: str, owner: str, seqs: Sequence[int] | None = None) -> int:
        """`owner`'s claims (on `seqs`, or all) ended with no outcome (not started, or a
        clean stop): those heads are due again on their schedule; how many."""
        only = None if seqs is None else list(seqs)
        return await self._exec(
            "UPDATE outbox_heads h SET due = d.next_attempt_at, claimed_by = NULL,"
            " claimed_until = NULL FROM deliveries d WHERE h.sink = %s AND h.claimed_by = %s"
            " AND (%s::bigint[] IS NULL OR h.seq = ANY(%s))"
            " AND d.sink = h.sink AND d.seq = h.seq",
            (sink, owner, only, only),
        )

    async def oldest_head(self, sink: str) -> OutboxItem | None:
        row = await self._one(_HEADS + " WHERE h.sink = %s ORDER BY h.seq LIMIT 1", (sink,))
        return None if row is None else OutboxItem(*row)

    async def next_due(self, sink: str) -> float | None:
        row = await self._one("SELECT MIN(due) FROM outbox_heads WHERE sink = %s", (sink,))
        return None if row is None or row[0] is None else float(row[0])

    async def release(self, sink: str, now: float, *, limit: int = 500) -> int:
        """Claimed heads (in flight at a replica) are left alone, and so are those being
        claimed (locked) as this runs."""
        return await self._exec(
            "UPDATE deliveries SET next_attempt_at = 0 WHERE sink = %s AND seq IN"
            " (SELECT seq FROM outbox_heads WHERE sink = %s AND due > %s"
            " AND (claimed_by IS NULL OR claimed_until <= %s)"
            " ORDER BY due LIMIT %s FOR UPDATE SKIP LOCKED)",
            (sink, sink, now, now, limit),
        )

    async def note_failure(self, sink: str, seq: int, *, error: str) -> None:
        await self._exec(
            "UPDATE deliveries SET last_error = %s WHERE sink = %s AND seq = %s",
            (error[:500], sink, seq),
        )

    async def reschedule(self, sink: str, seq: int, *, at: float, error: str) -> None:
        await self._exec(
            "UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = %s,"
            " last_error = %s WHERE sink = %s AND seq = %s",
            (at, error[:500], sink, seq),
        )

    async def mark_dead(self, sink: str, seq: int, *, error: str) -> None:
        await self._exec(
            "UPDATE deliveries SET state = 'dead', attempts = attempts + 1, last_error = %s"
            " WHERE sink = %s AND seq = %s",
            (error[:500], sink, seq),
        )

    async def queue_depth(self, sink: str) -> dict[str, int]:
        rows = await self._all(  # the slots' sum (migrations_pg step 7)
            "SELECT state, SUM(n) FROM outbox_counts WHERE sink = %s GROUP BY state", (sink,)
        )
        depth = {"pending": 0, "dead": 0}
        depth.update({state: int(n) for state, n in rows})
        return depth

    async def outbox(self, sink: str) -> list[OutboxItem]:
        rows = await self._all(
            _ITEM + " FROM deliveries d JOIN events e ON e.seq = d.seq WHERE d.sink = %s"
            " ORDER BY d.seq",
            (sink,),
        )
        return [OutboxItem(*row) for row in rows]

    async def purge(self, sink: str, *, before: float | None = None) -> int:
        """Dead letters dropped (of events created before `before`); how many."""
        async with self._tx() as conn:
            cur = await conn.execute(
                "DELETE FROM deliveries d USING events e WHERE e.seq = d.seq AND d.sink = %s"
                " AND d.state = 'dead' AND (%s::float8 IS NULL OR e.created_at < %s)"
                " RETURNING d.seq",
                (sink, before, before),
            )
            seqs = [int(seq) for (seq,) in await cur.fetchall()]
            await conn.execute(
                "DELETE FROM events e WHERE seq = ANY(%s) AND NOT EXISTS"
                " (SELECT 1 FROM deliveries d WHERE d.seq = e.seq)",
                (seqs,),
            )
        return len(seqs)

    async def replay(
        self,
        sink: str,
        *,
        deadline: float,
        event_id: str | None = None,
        since: float | None = None,
    ) -> int:
        """Dead letters back to pending, due at once, with a fresh deadline; how many."""
        return await self._exec(
            "UPDATE deliveries d SET state = 'pending', attempts = 0, next_attempt_at = 0,"
            " deadline = %s FROM events e WHERE e.seq = d.seq AND d.sink = %s"
            " AND d.state = 'dead' AND (%s::text IS NULL OR e.event_id = %s)"
            " AND (%s::float8 IS NULL OR e.created_at >= %s)",
            (deadline, sink, event_id, event_id, since, since),
        )
