"""What claiming webhook heads costs a dispatch turn, on SQLite and on PostgreSQL.

    python bench/outbox_claims.py [--pending 10000] [--repeat 200]

A state holds `--pending` pending webhook deliveries, round-robin over 1,000 runs, every
head due. The sink's steady state: 8 deliveries in flight (the default concurrency), one
ends and the turn starts one more. "read" is the turn before claims: its due heads (limit
8, the in-flight ones among them skipped), the delivery marked done, the next due time.
"claim" is the turn now: one head claimed (7 claimed heads in flight), marked done, the
next due time. Both on copies of one state, turns interleaved, median of `--repeat`.
PostgreSQL: a throwaway server (`tests/pg.py`: initdb, a unix socket), skipped without
its binaries. Bounded: well under a minute.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from outbox import BODY, NOW, fill  # bench/outbox.py

from watcher.delivery.webhook import CLAIM_MARGIN, SINK
from watcher.state.astore import AsyncStore
from watcher.state.store import Store
from watcher.state.store_protocol import StateStore

RUNS = 1_000
IN_FLIGHT = 7  # with the one the turn starts: 8, the default max_concurrency
HOLD = 10.0 + CLAIM_MARGIN  # the default timeout + the margin


async def read_turn(store: StateStore, in_flight: set[int]) -> None:
    heads = await store.due_heads(SINK, NOW, limit=IN_FLIGHT + 1)
    seq = next(h.seq for h in heads if h.seq not in in_flight)
    await store.mark_delivered(SINK, [seq])
    await store.next_due(SINK)


async def claim_turn(store: StateStore) -> None:
    (head,) = await store.claim_due_heads(SINK, "bench", NOW, hold=HOLD, limit=1)
    await store.mark_delivered(SINK, [head.seq])
    await store.next_due(SINK)


async def compare(read: StateStore, claim: StateStore, repeat: int) -> tuple[float, float]:
    """Median ms of a turn without claims (on `read`) and with them (on `claim`)."""
    in_flight = {h.seq for h in await read.due_heads(SINK, NOW, limit=IN_FLIGHT)}
    await claim.claim_due_heads(SINK, "bench", NOW, hold=HOLD, limit=IN_FLIGHT)
    times: dict[str, list[float]] = {"read": [], "claim": []}
    turns: dict[str, Callable[[], Awaitable[None]]] = {
        "read": lambda: read_turn(read, in_flight),
        "claim": lambda: claim_turn(claim),
    }
    for _ in range(repeat):
        for name, turn in turns.items():
            start = time.perf_counter()
            await turn()
            times[name].append(time.perf_counter() - start)
    return statistics.median(times["read"]) * 1000, statistics.median(times["claim"]) * 1000


async def on_sqlite(pending: int, repeat: int, tmp: Path) -> tuple[float, float]:
    fill(tmp / "a.db", RUNS, pending, failing=False)
    shutil.copy(tmp / "a.db", tmp / "b.db")
    a, b = Store(tmp / "a.db"), Store(tmp / "b.db")
    try:  # the sink's SQLite calls: one worker thread each, as AsyncStore makes them
        return await compare(AsyncStore(a), AsyncStore(b), repeat)
    finally:
        a.close()
        b.close()


async def on_postgresql(pending: int, repeat: int) -> tuple[float, float] | None:
    import dataclasses

    from _pytest.outcomes import Skipped

    from tests.pg import pg_server
    from watcher.state.store_pg import PgStore

    servers = pg_server()
    try:
        server = next(servers)
    except Skipped as exc:
        print(f"PostgreSQL skipped: {exc}")
        return None
    try:
        stores = []
        for name in ("bench_read", "bench_claim"):
            server.psql(f"CREATE DATABASE {name}")
            store = await PgStore.open(dataclasses.replace(server, dbname=name).url)
            async with store._tx() as conn:
                await conn.execute(
                    "INSERT INTO events (seq, event_id, thread_id, run_id, type, body,"
                    " created_at) SELECT i, 'evt_' || i, 'thread_b', 'run_' || (i %% %s),"
                    " 'thread.run.step.completed', %s, %s FROM generate_series(1, %s) i",
                    (RUNS, BODY, int(NOW), pending),
                )
                await conn.execute(
                    "INSERT INTO deliveries (seq, sink, deadline)"
                    " SELECT i, %s, %s FROM generate_series(1, %s) i",
                    (SINK, NOW + 259200, pending),
                )
                await conn.execute("ANALYZE")
            stores.append(store)
        try:
            return await compare(stores[0], stores[1], repeat)
        finally:
            for store in stores:
                await store.close()
    finally:
        servers.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    print(
        f"{args.pending:,} pending webhook deliveries over {RUNS:,} runs, {IN_FLIGHT} in flight;"
        f" a dispatch turn, median ms of {args.repeat} (`python bench/outbox_claims.py`)\n"
    )
    print("| backend | read (before claims) | claim (now) | claim / read |")
    print("|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        read, claim = await on_sqlite(args.pending, args.repeat, Path(tmp))
    print(f"| SQLite | {read:.3f} | {claim:.3f} | {claim / read:.2f} |", flush=True)
    pg = await on_postgresql(args.pending, args.repeat)
    if pg is not None:
        read, claim = pg
        print(f"| PostgreSQL | {read:.3f} | {claim:.3f} | {claim / read:.2f} |", flush=True)


if __name__ == "__main__":
    anyio.run(main)
