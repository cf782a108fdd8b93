"""What the PostgreSQL store's parts share: the connection pool, short queries, and
psycopg's errors turned into `StoreError` (no driver type reaches the daemon)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, LiteralString

import psycopg
from psycopg_pool import AsyncConnectionPool

from watcher.state.store_protocol import StoreError

__all__ = ["Conn", "PgTables"]

Conn = psycopg.AsyncConnection[tuple[Any, ...]]
Params = Sequence[object]


class PgTables:
    """A base for the PostgreSQL store's parts: one pool (autocommit connections), shared."""

    _pool: AsyncConnectionPool[Conn]
    path: str

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[Conn]:
        try:
            async with self._pool.connection() as conn:
                yield conn
        except psycopg.Error as exc:
            raise StoreError(f"state database {self.path}: {exc}") from exc

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[Conn]:
        """A connection inside one transaction (committed at the end, rolled back on error)."""
        async with self._conn() as conn, conn.transaction():
            yield conn

    async def _all(self, sql: LiteralString, params: Params = ()) -> list[tuple[Any, ...]]:
        async with self._conn() as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchall()

    async def _one(self, sql: LiteralString, params: Params = ()) -> tuple[Any, ...] | None:
        async with self._conn() as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchone()

    async def _exec(self, sql: LiteralString, params: Params = ()) -> int:
        """One statement; the rows it changed."""
        async with self._conn() as conn:
            cur = await conn.execute(sql, params)
            return cur.rowcount
