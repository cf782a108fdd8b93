"""The watches in PostgreSQL: `run_watches` and `thread_watches`, as `store_watches` keeps
them in SQLite (insertion order is their `id`, SQLite's rowid)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from watcher.state.store_pg_base import PgTables
from watcher.state.store_records import RunWatch, ThreadWatch, decode_include, encode_include

__all__ = ["PgWatchTables"]


class PgWatchTables(PgTables):
    async def add_run_watch(
        self, thread_id: str, run_id: str, source: str, include: Sequence[str] | None = None
    ) -> bool:
        return (
            await self._exec(
                "INSERT INTO run_watches (thread_id, run_id, source, include)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (thread_id, run_id, source, encode_include(include)),
            )
            > 0
        )

    async def mark_runs_ignored(self, thread_id: str, run_ids: Iterable[str]) -> None:
        rows = [(thread_id, r, time.time()) for r in run_ids]
        async with self._tx() as conn:
            await conn.cursor().executemany(
                "INSERT INTO run_watches (thread_id, run_id, source, done, done_at)"
                " VALUES (%s, %s, 'ignored', 1, %s) ON CONFLICT DO NOTHING",
                rows,
            )

    async def remove_run_watch(self, thread_id: str, run_id: str) -> None:
        await self._exec(
            "DELETE FROM run_watches WHERE thread_id = %s AND run_id = %s", (thread_id, run_id)
        )

    async def run_watches(self, *, active_only: bool = False) -> list[RunWatch]:
        rows = await self._all(
            "SELECT thread_id, run_id, source, include, cursor, done FROM run_watches"
            " WHERE done = 0 OR NOT %s ORDER BY id",
            (active_only,),
        )
        return [RunWatch(t, r, s, decode_include(i), c, bool(d)) for t, r, s, i, c, d in rows]

    async def add_thread_watch(
        self, thread_id: str, source: str, started_at: float, include: Sequence[str] | None = None
    ) -> bool:
        return (
            await self._exec(
                "INSERT INTO thread_watches (thread_id, source, include, started_at)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (thread_id, source, encode_include(include), started_at),
            )
            > 0
        )

    async def remove_thread_watch(self, thread_id: str) -> None:
        await self._exec("DELETE FROM thread_watches WHERE thread_id = %s", (thread_id,))

    async def thread_watches(self) -> list[ThreadWatch]:
        rows = await self._all(
            "SELECT thread_id, source, include, started_at, listed FROM thread_watches ORDER BY id"
        )
        return [ThreadWatch(t, s, decode_include(i), a, bool(x)) for t, s, i, a, x in rows]

    async def set_config_include(
        self, thread_id: str, run_id: str | None, include: Sequence[str] | None
    ) -> bool:
        value = encode_include(include)
        async with self._tx() as conn:
            if run_id:
                cur = await conn.execute(
                    "UPDATE run_watches SET include = %s WHERE thread_id = %s AND run_id = %s"
                    " AND source = 'config' AND include IS DISTINCT FROM %s",
                    (value, thread_id, run_id, value),
                )
                return cur.rowcount > 0
            cur = await conn.execute(
                "UPDATE thread_watches SET include = %s WHERE thread_id = %s"
                " AND source = 'config' AND include IS DISTINCT FROM %s",
                (value, thread_id, value),
            )
            if cur.rowcount:
                await conn.execute(
                    "UPDATE run_watches SET include = %s WHERE thread_id = %s"
                    " AND source = 'thread'",
                    (value, thread_id),
                )
            return cur.rowcount > 0

    async def watch_page(
        self, *, finished: bool, after: tuple[str, str] | None, limit: int
    ) -> list[tuple[str, str | None, str, bool, str | None]]:
        rows = await self._all(
            "SELECT w.thread_id, w.run_id, w.source, w.done, o.status FROM ("
            " SELECT thread_id, '' COLLATE \"C\" AS run_id, source, 0 AS done"
            " FROM thread_watches UNION ALL SELECT thread_id, run_id, source, done"
            " FROM run_watches WHERE source != 'ignored' AND (done = 0 OR %s)) w"
            " LEFT JOIN objects o ON o.object_id = w.run_id AND w.run_id != ''"
            " WHERE (w.thread_id, w.run_id) > (%s, %s) ORDER BY w.thread_id, w.run_id LIMIT %s",
            (finished, *(after or ("", "")), limit),
        )
        return [(t, r or None, s, bool(d), st) for t, r, s, d, st in rows]

    async def watch_count(self) -> int:
        row = await self._one(
            "SELECT (SELECT COUNT(*) FROM thread_watches)"
            " + (SELECT COUNT(*) FROM run_watches WHERE source != 'ignored')"
        )
        return int(row[0]) if row else 0

    async def has_watch(self, thread_id: str, run_id: str | None) -> bool:
        if not run_id:
            sql = "SELECT 1 FROM thread_watches WHERE thread_id = %s"
            return await self._one(sql, (thread_id,)) is not None
        return (
            await self._one(
                "SELECT 1 FROM run_watches WHERE thread_id = %s AND run_id = %s"
                " AND source != 'ignored'",
                (thread_id, run_id),
            )
            is not None
        )

    async def mark_thread_listed(self, thread_id: str) -> None:
        await self._exec("UPDATE thread_watches SET listed = 1 WHERE thread_id = %s", (thread_id,))

    async def runs_of_thread(self, thread_id: str) -> set[str]:
        rows = await self._all("SELECT run_id FROM run_watches WHERE thread_id = %s", (thread_id,))
        return {r for (r,) in rows}
