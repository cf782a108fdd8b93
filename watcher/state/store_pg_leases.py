"""Leases on watches, for replicas sharing one database: a watch is polled by the replica
that holds its lease (an owner and an expiry, renewed while held); a replica that dies
loses its leases at expiry and the others take them (`FOR UPDATE SKIP LOCKED`: two
replicas taking at once never wait on, nor take, the same rows).

Not wired into the scheduler yet: these are the store's operations for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from watcher.state.store_pg_base import PgTables

__all__ = ["Lease", "PgLeaseTables"]


@dataclass(frozen=True, slots=True)
class Lease:
    thread_id: str
    run_id: str | None  # None: a thread watch
    owner: str
    expires_at: float


class PgLeaseTables(PgTables):
    async def take_leases(
        self, owner: str, now: float, *, lease: float, limit: int = 100
    ) -> list[tuple[str, str | None]]:
        """Up to `limit` active watches whose lease is free or expired, now `owner`'s until
        `now + lease` (expired soonest first); the watches taken."""
        async with self._tx() as conn:
            await conn.execute(
                "INSERT INTO watch_leases (thread_id, run_id)"
                " SELECT thread_id, run_id FROM run_watches WHERE done = 0"
                " UNION ALL SELECT thread_id, '' FROM thread_watches"
                " ON CONFLICT DO NOTHING"
            )
            cur = await conn.execute(
                "WITH free AS (SELECT thread_id, run_id FROM watch_leases"
                " WHERE expires_at <= %s"
                " ORDER BY expires_at LIMIT %s FOR UPDATE SKIP LOCKED)"
                " UPDATE watch_leases l SET owner = %s, expires_at = %s FROM free"
                " WHERE l.thread_id = free.thread_id AND l.run_id = free.run_id"
                " RETURNING l.thread_id, l.run_id",
                (now, limit, owner, now + lease),
            )
            return sorted((t, r or None) for t, r in await cur.fetchall())

    async def renew_leases(self, owner: str, now: float, *, lease: float) -> int:
        """`owner`'s leases not yet expired run until `now + lease`; how many (one that
        expired may belong to another replica by now: it is not taken back here)."""
        return await self._exec(
            "UPDATE watch_leases SET expires_at = %s WHERE owner = %s AND expires_at > %s",
            (now + lease, owner, now),
        )

    async def release_leases(self, owner: str) -> int:
        """At a clean stop: `owner`'s leases free at once for the others."""
        return await self._exec(
            "UPDATE watch_leases SET owner = NULL, expires_at = 0 WHERE owner = %s", (owner,)
        )

    async def leases(self, now: float) -> list[Lease]:
        """Who holds what (leases not expired), for `/status`."""
        rows = await self._all(
            "SELECT thread_id, run_id, owner, expires_at FROM watch_leases"
            " WHERE expires_at > %s AND owner IS NOT NULL ORDER BY owner, thread_id, run_id",
            (now,),
        )
        return [Lease(t, r or None, o, e) for t, r, o, e in rows]
