"""Leases on watches, for replicas sharing one database: a watch is polled by the replica
that holds its lease (an owner and an expiry, renewed while held); a replica that dies
loses its leases at expiry and the others take them (`FOR UPDATE SKIP LOCKED`: two
replicas taking at once never wait on, nor take, the same rows).

The `LeaseStore` of `store_protocol`, driven by `watching.leases`. Expiries are unix times
(the replicas' clocks are assumed to agree within a small part of the lease).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager

from watcher.state.store_pg_base import PgTables
from watcher.state.store_records import Lease, Share, TakenLease, WatchKey

__all__ = ["EXCLUSIVE", "Lease", "PgLeaseTables"]

#: `pg_advisory_xact_lock` key of `exclusive()` ("rsw-cfgw" as bytes): one replica at a
#: time makes the config's watches true.
EXCLUSIVE = 0x7273772D63666777

# Lease rows of watches no longer active (finished, removed): gone, so nobody takes them
# and their holder's renewal no longer returns them. Rows another replica has locked are
# left for a later tick (never waited on: two replicas taking at once cannot deadlock).
_DROP_ENDED = (
    "DELETE FROM watch_leases WHERE (thread_id, run_id) IN"
    " (SELECT thread_id, run_id FROM watch_leases l WHERE CASE WHEN l.run_id = ''"
    " THEN NOT EXISTS (SELECT 1 FROM thread_watches t WHERE t.thread_id = l.thread_id)"
    " ELSE NOT EXISTS (SELECT 1 FROM run_watches w WHERE w.thread_id = l.thread_id"
    " AND w.run_id = l.run_id AND w.done = 0) END FOR UPDATE SKIP LOCKED)"
)


class PgLeaseTables(PgTables):
    async def take_leases(
        self, owner: str, now: float, *, lease: float, limit: int = 1000
    ) -> list[TakenLease]:
        """Up to `limit` active watches whose lease is free or expired, now `owner`'s until
        `now + lease` (expired soonest first); the watches taken, with their last owner."""
        async with self._tx() as conn:
            await conn.execute(_DROP_ENDED)
            await conn.execute(
                "INSERT INTO watch_leases (thread_id, run_id)"
                " SELECT thread_id, run_id FROM run_watches WHERE done = 0"
                " UNION ALL SELECT thread_id, '' FROM thread_watches"
                " ORDER BY 1, 2 ON CONFLICT DO NOTHING"  # (in one order: no deadlock)
            )
            cur = await conn.execute(
                "WITH free AS (SELECT thread_id, run_id, owner FROM watch_leases"
                " WHERE expires_at <= %s"
                " ORDER BY expires_at LIMIT %s FOR UPDATE SKIP LOCKED)"
                " UPDATE watch_leases l SET owner = %s, expires_at = %s FROM free"
                " WHERE l.thread_id = free.thread_id AND l.run_id = free.run_id"
                " RETURNING l.thread_id, l.run_id, free.owner",
                (now, limit, owner, now + lease),
            )
            rows = await cur.fetchall()
        taken = [TakenLease(t, r or None, o) for t, r, o in rows]
        return sorted(taken, key=lambda x: (x.thread_id, x.run_id or ""))

    async def take_lease(
        self, owner: str, key: WatchKey, now: float, *, lease: float
    ) -> TakenLease | None:
        """One watch's lease for `owner` now, if it is free, expired or already theirs (a
        watch this replica just added or found); None when another replica holds it."""
        thread_id, run_id = key
        async with self._tx() as conn:
            cur = await conn.execute(
                "SELECT owner FROM watch_leases WHERE thread_id = %s AND run_id = %s FOR UPDATE",
                (thread_id, run_id or ""),
            )
            before = await cur.fetchone()
            cur = await conn.execute(
                "INSERT INTO watch_leases AS l VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (thread_id, run_id) DO UPDATE"
                " SET owner = excluded.owner, expires_at = excluded.expires_at"
                " WHERE l.expires_at <= %s OR l.owner = excluded.owner",
                (thread_id, run_id or "", owner, now + lease, now),
            )
            if cur.rowcount == 0:
                return None
        previous = before[0] if before is not None else None
        return TakenLease(thread_id, run_id, None if previous == owner else previous)

    async def renew_leases(self, owner: str, now: float, *, lease: float) -> set[WatchKey]:
        """`owner`'s leases not yet expired run until `now + lease`; the watches still held
        (one that expired may belong to another replica by now: it is not taken back here;
        one whose watch ended or was removed is gone)."""
        rows = await self._all(
            "UPDATE watch_leases SET expires_at = %s WHERE owner = %s AND expires_at > %s"
            " RETURNING thread_id, run_id",
            (now + lease, owner, now),
        )
        return {(t, r or None) for t, r in rows}

    async def release_leases(self, owner: str, keys: Collection[WatchKey] | None = None) -> int:
        """`owner`'s leases (all of them: a clean stop, which also ends its heartbeat; or
        those of `keys`: more than its share) free at once for the others; how many."""
        if keys is not None:
            return await self._exec(
                "UPDATE watch_leases SET owner = NULL, expires_at = 0 WHERE owner = %s"
                " AND (thread_id, run_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
                (owner, [t for t, _ in keys], [r or "" for _, r in keys]),
            )
        async with self._tx() as conn:
            await conn.execute("DELETE FROM replicas WHERE id = %s", (owner,))
            cur = await conn.execute(
                "UPDATE watch_leases SET owner = NULL, expires_at = 0 WHERE owner = %s", (owner,)
            )
            return cur.rowcount

    async def share(self, owner: str, now: float, *, lease: float) -> Share:
        """`owner` is alive (its heartbeat); the replicas alive (itself included), the
        watches active (each replica holds about its share of them), and the next expiry
        of another replica's lease."""
        row = await self._one(
            "WITH beat AS (INSERT INTO replicas VALUES (%s, %s) ON CONFLICT (id)"
            " DO UPDATE SET seen_at = excluded.seen_at),"
            " gone AS (DELETE FROM replicas WHERE seen_at < %s AND id <> %s)"
            " SELECT 1 + (SELECT count(*) FROM replicas WHERE seen_at > %s AND id <> %s),"
            " (SELECT count(*) FROM run_watches WHERE done = 0)"
            " + (SELECT count(*) FROM thread_watches),"
            " (SELECT min(expires_at) FROM watch_leases WHERE expires_at > %s AND owner <> %s),"
            " (SELECT count(*) FROM watch_leases WHERE expires_at <= %s AND owner <> %s)",
            (owner, now, now - 100 * lease, owner, now - lease, owner, now, owner, now, owner),
        )
        assert row is not None
        expiry = None if row[2] is None else float(row[2])
        return Share(int(str(row[0])), int(str(row[1])), expiry, int(str(row[3])))

    async def leases(self, now: float) -> list[Lease]:
        """Who holds what (leases not expired), for `/status`."""
        rows = await self._all(
            "SELECT thread_id, run_id, owner, expires_at FROM watch_leases"
            " WHERE expires_at > %s AND owner IS NOT NULL ORDER BY owner, thread_id, run_id",
            (now,),
        )
        return [Lease(t, r or None, o, e) for t, r, o, e in rows]

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """One replica at a time inside (the config's watches made true): a transaction
        holding an advisory lock on a connection of its own, released when it ends."""
        async with self._tx() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (EXCLUSIVE,))
            yield
