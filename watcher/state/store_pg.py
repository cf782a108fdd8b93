"""The state in PostgreSQL (`[state] url`): the `StateStore` of several replicas.

`PgStore.open` connects a small pool (autocommit connections; each multi-statement
operation is one transaction) and applies the schema steps the database lacks
(`migrations_pg`, under an advisory lock). The tables and the meaning of every method are
the SQLite store's; psycopg's errors come out as `StoreError`, and `path` is the URL
without its password, for log lines.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from watcher.core.urls import mask_url
from watcher.state.migrations_pg import upgrade
from watcher.state.retention import BATCH, KEPT_SOURCES
from watcher.state.statefile import StateError
from watcher.state.store_pg_base import Conn
from watcher.state.store_pg_events import PgEventTables
from watcher.state.store_pg_leases import PgLeaseTables
from watcher.state.store_pg_outbox import PgOutboxTables
from watcher.state.store_pg_watches import PgWatchTables
from watcher.state.store_protocol import LeaseStore, StateStore

__all__ = ["PgStore"]

CONNECT_TIMEOUT = 30.0  # seconds for the first connection at start


class PgStore(PgWatchTables, PgEventTables, PgOutboxTables, PgLeaseTables):
    """One PostgreSQL database, at the latest schema once open."""

    def __init__(self, pool: AsyncConnectionPool[Conn], where: str) -> None:
        self._pool = pool
        self.path = where

    @classmethod
    async def open(cls, url: str, *, password: str | None = None, max_size: int = 4) -> PgStore:
        """Connect and upgrade; `StateError` (one line, no password) when that fails."""
        where = mask_url(url)
        kwargs: dict[str, Any] = {"autocommit": True}
        if password:
            kwargs["password"] = password
        pool = AsyncConnectionPool[Conn](
            url, kwargs=kwargs, min_size=1, max_size=max_size, open=False
        )
        try:
            await pool.open(wait=True, timeout=CONNECT_TIMEOUT)
            async with pool.connection() as conn:
                await upgrade(conn, where, time.time())
        except (PoolTimeout, psycopg.Error) as exc:
            await pool.close()
            raise StateError(f"state database {where}: {_first_line(exc)}") from None
        except BaseException:
            await pool.close()
            raise
        return cls(pool, where)

    async def close(self) -> None:
        await self._pool.close()

    async def get_meta(self, key: str) -> str | None:
        row = await self._one("SELECT value FROM meta WHERE key = %s", (key,))
        return None if row is None else str(row[0])

    async def set_meta(self, key: str, value: str) -> None:
        await self._exec(
            "INSERT INTO meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = %s",
            (key, value, value),
        )

    async def prune(self, cutoff: float) -> AsyncIterator[int]:
        """What finished before `cutoff` goes, one short transaction per batch, like
        `retention.prune` on SQLite."""
        while runs := await self._all(
            "SELECT thread_id, run_id, source FROM run_watches"
            " WHERE done = 1 AND done_at < %s ORDER BY done_at LIMIT %s",
            (cutoff, BATCH),
        ):
            kept = [(t, r) for t, r, s in runs if s in KEPT_SOURCES]
            gone = [(t, r) for t, r, s in runs if s not in KEPT_SOURCES]
            async with self._tx() as conn:
                deleted = 0
                for sql, rows in (
                    (
                        "DELETE FROM objects WHERE thread_id = %s AND run_id = %s",
                        [(t, r) for t, r, _ in runs],
                    ),
                    (
                        "UPDATE run_watches SET done_at = NULL WHERE thread_id = %s"
                        " AND run_id = %s",
                        kept,
                    ),
                    ("DELETE FROM run_watches WHERE thread_id = %s AND run_id = %s", gone),
                ):
                    for row in rows:
                        deleted += (await conn.execute(sql, row)).rowcount
            yield deleted
        # objects of watches removed; events no sink needs any more
        yield await self._exec(
            "DELETE FROM objects o WHERE NOT EXISTS (SELECT 1 FROM run_watches w"
            " WHERE w.thread_id = o.thread_id AND w.run_id = o.run_id)"
        )
        yield await self._exec(
            "DELETE FROM events e WHERE created_at < %s AND NOT EXISTS"
            " (SELECT 1 FROM deliveries d WHERE d.seq = e.seq)",
            (cutoff,),
        )


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _is_a_state_store(store: PgStore) -> StateStore:
    return store  # mypy checks that PgStore implements the protocol


def _is_a_lease_store(store: PgStore) -> LeaseStore:
    return store  # and the leases' protocol (replicas)
