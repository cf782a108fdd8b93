"""Replicas recording at the same moment do not queue on one row: the outbox's counts
(`outbox_counts`, kept by the deliveries' trigger) are kept in slots, one per database
backend (its pid mod 64), and summed when read. Before, every recording and every mark
of every replica added to the one row of its (sink, state) and held its lock until
commit (bench/failover.md: 28 ms of the database a poll with 3 replicas, 2.5 on SQLite)."""

from __future__ import annotations

import psycopg
import pytest

from tests.pg import PgServer, pg  # noqa: F401  (the fixture)
from watcher.state.store_pg import PgStore

SLOTS = 64


async def _backend(url: str, other: int | None = None) -> tuple[psycopg.AsyncConnection, int]:
    """A connection (autocommit off) whose backend's slot is not `other`'s."""
    for _ in range(20):
        conn = await psycopg.AsyncConnection.connect(url)
        row = await (await conn.execute("SELECT pg_backend_pid()")).fetchone()
        await conn.commit()
        assert row is not None
        if other is None or row[0] % SLOTS != other % SLOTS:
            return conn, int(row[0])
        await conn.close()
    raise AssertionError("no backend in another slot in 20 connections")


async def _record(conn: psycopg.AsyncConnection, run: str) -> None:
    """An event and its stdout delivery, as a recording writes them (not committed)."""
    cur = await conn.execute(
        "INSERT INTO events (event_id, thread_id, run_id, type, body, created_at)"
        " VALUES (%s, 'thread_a', %s, 'thread.run.completed', '{}', 1) RETURNING seq",
        (f"evt_{run}", run),
    )
    row = await cur.fetchone()
    assert row is not None
    await conn.execute("INSERT INTO deliveries (seq, sink) VALUES (%s, 'stdout')", (row[0],))


@pytest.mark.anyio
async def test_two_backends_recording_at_once_do_not_wait_on_each_other(
    pg: PgServer,  # noqa: F811
) -> None:
    url = pg.database("outbox_counts").url
    store = await PgStore.open(url)  # the schema, at its latest step
    a, pid = await _backend(url)
    b, _ = await _backend(url, other=pid)
    try:
        await _record(a, "run_a")  # a's transaction stays open: it holds what it wrote
        await b.execute("SET lock_timeout = '5s'")
        await _record(b, "run_b")  # before: waited on a's count row, then LockNotAvailable
        await b.commit()
        await a.commit()
        assert await store.queue_depth("stdout") == {"pending": 2, "dead": 0}
        await store.mark_delivered("stdout", [1])
        assert await store.queue_depth("stdout") == {"pending": 1, "dead": 0}
    finally:
        await a.close()
        await b.close()
        await store.close()
