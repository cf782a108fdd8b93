"""The `StateStore` contract on both backends: the same calls on SQLite (a file on disk)
and on PostgreSQL (a throwaway server, `tests/pg.py`) give the same results.

Each scenario is a script of the calls the daemon makes; it returns a transcript of what
the store answered, and the transcripts of the two backends must be equal.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.pg import PgServer, pg  # noqa: F401  (the fixture)
from watcher.core.events import Event, event_id
from watcher.core.transitions import ObjectState
from watcher.state.astore import AsyncStore
from watcher.state.migrations_pg import LATEST as PG_LATEST
from watcher.state.store import Store
from watcher.state.store_pg import PgStore
from watcher.state.store_protocol import StateStore
from watcher.state.store_records import OutboxItem

_names = itertools.count()


def _new_database(server: PgServer) -> PgServer:
    """A fresh database on the server, for one test."""
    return server.database(f"contract_{next(_names)}")


def _event(thread: str, run: str, obj: str, status: str, at: int) -> Event:
    return Event(
        id=event_id(obj, status),
        type=f"thread.run.{status}",
        created_at=at,
        data={"id": obj, "object": "thread.run", "status": status},
        previous_status=None,
        thread_id=thread,
        run_id=run,
    )


async def _watches(store: StateStore) -> list[Any]:
    out: list[Any] = []
    out.append(await store.add_run_watch("thread_a", "run_1", "config", ["step"]))
    out.append(await store.add_run_watch("thread_a", "run_1", "api"))  # already there
    out.append(await store.add_run_watch("thread_b", "run_2", "api"))
    out.append(await store.add_thread_watch("thread_c", "config", 100.5, None))
    await store.mark_runs_ignored("thread_c", ["run_old1", "run_old2"])
    out.append(await store.add_run_watch("thread_c", "run_3", "thread"))
    out.append(await store.set_config_include("thread_a", "run_1", ["step", "message"]))
    out.append(await store.set_config_include("thread_a", "run_1", ["step", "message"]))
    out.append(await store.set_config_include("thread_c", None, ["x"]))
    await store.mark_thread_listed("thread_c")
    out.append(await store.run_watches())
    out.append(await store.run_watches(active_only=True))
    out.append(await store.thread_watches())
    out.append(await store.watch_page(finished=True, after=None, limit=2))
    out.append(await store.watch_page(finished=False, after=("thread_a", "run_1"), limit=10))
    out.append(await store.watch_count())
    out.append([await store.has_watch(*k) for k in _KEYS])
    out.append(sorted(await store.runs_of_thread("thread_c")))
    await store.remove_run_watch("thread_b", "run_2")
    await store.remove_thread_watch("thread_c")
    out.append([await store.has_watch(*k) for k in _KEYS])
    return out


_KEYS = [("thread_a", "run_1"), ("thread_c", None), ("thread_c", "run_old1"), ("x", None)]


async def _events_and_outbox(store: StateStore) -> list[Any]:
    out: list[Any] = []
    for t, r in (("thread_a", "run_1"), ("thread_b", "run_2")):
        await store.add_run_watch(t, r, "api")
    sinks = ["stdout", "webhook"]
    statuses = ("queued", "in_progress", "completed")
    for i, status in enumerate(statuses):
        for t, r in (("thread_a", "run_1"), ("thread_b", "run_2")):
            ev = _event(t, r, r, status, 1000 + i)
            seqs = await store.record(
                t,
                r,
                [ev],
                {r: ObjectState(status, frozenset(statuses[: i + 1]))},  # as `detect` does
                cursor=f"c{i}",
                done=status == "completed",
                sinks=sinks,
                deadlines={"webhook": 5000.0},
            )
            out.append(seqs)
    out.append(await store.known_states("thread_a", "run_1"))
    out.append(await store.run_watches())
    out.append(await store.pending("stdout", limit=4))
    await store.mark_delivered("stdout", [p.seq for p in await store.pending("stdout")])
    out.append(await store.pending("stdout"))
    out.append(await store.due_heads("webhook", 10.0))  # one head per run
    out.append(await store.queue_depth("webhook"))
    out.append(await store.oldest_head("webhook"))
    await store.reschedule("webhook", 1, at=50.0, error="503")
    out.append(await store.due_heads("webhook", 10.0))  # run_1 waits, run_2 does not
    out.append(await store.next_due("webhook"))
    await store.note_failure("webhook", 1, error="probe failed")
    out.append(await store.release("webhook", 10.0))
    out.append(await store.due_heads("webhook", 10.0))
    await store.mark_dead("webhook", 1, error="410")
    await store.mark_delivered("webhook", [2])
    out.append(await store.due_heads("webhook", 10.0))  # the next of each run
    out.append(await store.queue_depth("webhook"))
    out.append(await store.replay("webhook", deadline=9000.0, event_id=event_id("run_1", "queued")))
    out.append(await store.due_heads("webhook", 10.0))  # run_1's first is head again
    await store.mark_dead("webhook", 1, error="410")
    await store.mark_dead("webhook", 3, error="410")
    out.append(await store.replay("webhook", deadline=9100.0, since=1001))
    out.append(await store.outbox("webhook"))
    out.append(await store.purge("webhook", before=1001))
    out.append(await store.purge("webhook"))
    out.append(await store.outbox("webhook"))
    out.append(await store.queue_depth("webhook"))
    out.append(await store.next_due("stdout"))
    return out


async def _claims(store: StateStore) -> list[Any]:
    """Webhook heads claimed by two replicas ("a", "b"): a claimed head is due for no one
    until an outcome is written for it or its claim expires (`hold` 30 here)."""
    out: list[Any] = []
    runs = [("thread_a", f"run_{i}") for i in (1, 2, 3)]
    for t, r in runs:
        await store.add_run_watch(t, r, "api")
    for i, status in enumerate(("queued", "in_progress")):  # seqs 1-3, then 4-6
        for t, r in runs:
            st = {r: ObjectState(status, frozenset({status}))}
            ev = _event(t, r, r, status, 1000 + i)
            await store.record(t, r, [ev], st, cursor=None, done=False, sinks=["webhook"])

    def seqs(items: list[OutboxItem]) -> list[int]:
        return [item.seq for item in items]

    out.append(seqs(await store.claim_due_heads("webhook", "a", 10.0, hold=30, limit=2)))
    out.append(seqs(await store.claim_due_heads("webhook", "b", 10.0, hold=30, limit=5)))
    out.append(seqs(await store.claim_due_heads("webhook", "b", 11.0, hold=30)))  # none left
    out.append(await store.due_heads("webhook", 11.0))
    out.append(await store.next_due("webhook"))  # the first claim's expiry
    out.append(await store.oldest_head("webhook"))  # a read: claimed or not
    out.append(await store.claim_oldest_head("webhook", "b", 11.0, hold=30))  # all claimed
    out.append(await store.release("webhook", 11.0))  # in flight: left alone
    await store.mark_delivered("webhook", [1])  # run_1's next (4) is head, unclaimed
    out.append(seqs(await store.claim_due_heads("webhook", "b", 12.0, hold=30)))
    await store.reschedule("webhook", 2, at=100.0, error="503")  # the claim ends with it
    out.append(await store.due_heads("webhook", 30.0))  # 3 and 4 claimed, 2 not yet due
    out.append(sorted(seqs(await store.due_heads("webhook", 100.0))))  # claims expired
    out.append((await store.claim_oldest_head("webhook", "a", 100.0, hold=30)).seq)  # a probe
    out.append(seqs(await store.claim_due_heads("webhook", "b", 101.0, hold=30)))
    await store.note_failure("webhook", 2, error="probe failed")  # back on its schedule
    out.append(seqs(await store.due_heads("webhook", 101.0)))
    await store.mark_dead("webhook", 3, error="410")
    out.append(seqs(await store.due_heads("webhook", 101.0)))  # run_3's next (6), and 2
    await store.reschedule("webhook", 6, at=800.0, error="503")
    out.append(seqs(await store.claim_due_heads("webhook", "a", 103.0, hold=30)))  # 2
    out.append((await store.claim_oldest_head("webhook", "a", 103.0, hold=30)).seq)  # 6
    out.append(await store.release("webhook", 103.0))  # 6 waits on its schedule but is claimed
    out.append(await store.next_due("webhook"))
    out.append(await store.due_heads("webhook", 200.0))  # 6: its prober died; on schedule
    out.append(await store.release("webhook", 200.0))  # ... and released: its claim expired
    out.append(sorted(seqs(await store.due_heads("webhook", 1000.0))))
    out.append(sorted(seqs(await store.claim_due_heads("webhook", "a", 1000.0, hold=30))))
    out.append(await store.unclaim("webhook", "b", [2]))  # not b's
    out.append(await store.unclaim("webhook", "a", [4]))  # not started: due again at once
    out.append(seqs(await store.due_heads("webhook", 1000.0)))
    out.append(await store.unclaim("webhook", "a"))  # a clean stop: all of a's
    out.append(sorted(seqs(await store.due_heads("webhook", 1000.0))))
    out.append(await store.next_due("webhook"))
    out.append(await store.queue_depth("webhook"))
    out.append(await store.outbox("webhook"))
    return out


async def _meta_and_prune(store: StateStore) -> list[Any]:
    out: list[Any] = [await store.get_meta("pause")]
    await store.set_meta("pause", "1.5")
    await store.set_meta("pause", "2.5")
    out.append(await store.get_meta("pause"))
    await store.add_run_watch("thread_a", "run_1", "api")
    await store.add_run_watch("thread_a", "run_2", "config")
    for r in ("run_1", "run_2"):
        ev = _event("thread_a", r, r, "completed", 10)
        st = {r: ObjectState("completed", frozenset({"completed"}))}
        await store.record("thread_a", r, [ev], st, cursor=None, done=True, sinks=[])
    out.append(sum([n async for n in store.prune(0.0)]))  # nothing finished that long ago
    out.append(sum([n async for n in store.prune(4e9)]))
    out.append(await store.run_watches())
    out.append(await store.known_states("thread_a", "run_2"))
    out.append(await store.pending("stdout"))
    return out


Scenario = Callable[[StateStore], Awaitable[list[Any]]]
SCENARIOS = {
    "watches": _watches,
    "events": _events_and_outbox,
    "meta": _meta_and_prune,
    "claims": _claims,
}


@pytest.fixture
async def both(pg: PgServer, tmp_path: Path) -> AsyncIterator[tuple[StateStore, StateStore]]:  # noqa: F811
    sync = Store(tmp_path / "state.db")
    pgs = await PgStore.open(_new_database(pg).url)
    try:
        yield AsyncStore(sync), pgs
    finally:
        sync.close()
        await pgs.close()


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_same_answers_on_sqlite_and_postgresql(
    both: tuple[StateStore, StateStore], name: str
) -> None:
    sqlite, postgres = both
    with anyio.fail_after(60):
        expected = await SCENARIOS[name](sqlite)
        got = await SCENARIOS[name](postgres)
    assert got == expected
    assert expected  # the scenario did something


@pytest.mark.anyio
async def test_two_replicas_starting_together_migrate_once(pg: PgServer) -> None:  # noqa: F811
    db = _new_database(pg)
    url = db.url
    stores: list[PgStore] = []

    async def start() -> None:
        stores.append(await PgStore.open(url))

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(start)
        stores.append(await PgStore.open(url))  # a restart applies nothing
    try:
        steps = db.psql("SELECT version FROM schema_steps ORDER BY version").split()
        assert steps == [str(v) for v in range(1, PG_LATEST + 1)]
        await stores[0].set_meta("k", "v")
        assert await stores[-1].get_meta("k") == "v"
    finally:
        for store in stores:
            await store.close()
