"""Replicas on one PostgreSQL database (the start of them): an event recorded once when two
processes record the same change, and watch leases taken with `SKIP LOCKED`."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import anyio
import pytest

from tests.pg import PgServer, open_stores, pg  # noqa: F401  (the fixture)
from watcher.core.events import Event, event_id
from watcher.core.transitions import ObjectState
from watcher.state.store_pg import PgStore

_names = itertools.count()


@pytest.fixture
async def replicas(pg: PgServer) -> AsyncIterator[list[PgStore]]:  # noqa: F811
    async with open_stores(pg.database(f"replicas_{next(_names)}")) as stores:
        yield stores


def _completed(run: str) -> tuple[list[Event], dict[str, ObjectState]]:
    ev = Event(
        id=event_id(run, "completed"),
        type="thread.run.completed",
        created_at=1,
        data={"id": run, "object": "thread.run", "status": "completed"},
        previous_status="in_progress",
        thread_id="thread_a",
        run_id=run,
    )
    return [ev], {run: ObjectState("completed", frozenset({"in_progress", "completed"}))}


@pytest.mark.anyio
async def test_two_replicas_recording_the_same_change_record_it_once(
    replicas: list[PgStore],
) -> None:
    a, b = replicas
    for run in ("run_new", "run_known"):
        await a.add_run_watch("thread_a", run, "api")
    # run_known was seen in_progress by both; run_new is seen by both for the first time
    st = {"run_known": ObjectState("in_progress", frozenset({"in_progress"}))}
    await a.record("thread_a", "run_known", [], st, cursor=None, done=False, sinks=[])
    seqs: dict[str, list[list[int]]] = {"run_new": [], "run_known": []}

    async def record(store: PgStore, run: str) -> None:
        events, updates = _completed(run)
        seqs[run].append(
            await store.record(
                "thread_a", run, events, updates, cursor=None, done=True, sinks=["stdout"]
            )
        )

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for run in seqs:
                for store in (a, b):
                    tg.start_soon(record, store, run)
    for run, answers in seqs.items():
        assert sorted(s for (s,) in answers if s) != [], run  # one of them recorded it
        assert sum(1 for (s,) in answers if s) == 1, run  # the other left it out (seq 0)
    assert len(await a.pending("stdout")) == 2
    assert (await b.known_states("thread_a", "run_known"))["run_known"].seen == {
        "in_progress",
        "completed",
    }


@pytest.mark.anyio
async def test_leases_are_shared_out_and_taken_over_at_expiry(replicas: list[PgStore]) -> None:
    a, b = replicas
    for i in range(10):
        await a.add_run_watch("thread_a", f"run_{i}", "api")
    await a.add_thread_watch("thread_b", "config", 0.0)
    with anyio.fail_after(30):
        taken: dict[str, list[tuple[str, str | None]]] = {}

        async def take(store: PgStore, owner: str) -> None:
            taken[owner] = [t.key for t in await store.take_leases(owner, 100.0, lease=15, limit=6)]

        async with anyio.create_task_group() as tg:
            tg.start_soon(take, a, "replica-a")
            tg.start_soon(take, b, "replica-b")
        mine, theirs = set(taken["replica-a"]), set(taken["replica-b"])
        assert not mine & theirs
        assert len(mine | theirs) == 11  # the 10 runs and the thread watch
        assert await a.take_leases("replica-a", 101.0, lease=15) == []  # all held
        # replica-a renews; replica-b dies: its leases go to replica-a at expiry, not before
        assert await a.renew_leases("replica-a", 110.0, lease=15) == mine  # the keys held
        assert await a.take_leases("replica-a", 114.0, lease=15) == []
        over = await a.take_leases("replica-a", 116.0, lease=15)
        assert {t.key for t in over} == theirs
        assert {t.previous_owner for t in over} == {"replica-b"}  # a takeover
        held = await b.leases(116.0)
        assert {(x.thread_id, x.run_id) for x in held} == mine | theirs
        assert {x.owner for x in held} == {"replica-a"}
        # a clean stop frees them at once
        assert await a.release_leases("replica-a") == 11
        freed = await b.take_leases("replica-b", 117.0, lease=15, limit=100)
        assert len(freed) == 11 and {t.previous_owner for t in freed} == {None}


@pytest.mark.anyio
async def test_a_finished_or_removed_watch_leaves_the_leases(replicas: list[PgStore]) -> None:
    a, b = replicas
    for run in ("run_1", "run_2", "run_3"):
        await a.add_run_watch("thread_a", run, "api")
    with anyio.fail_after(30):
        assert len(await a.take_leases("replica-a", 100.0, lease=15)) == 3
        await a.record("thread_a", "run_1", [], {}, cursor=None, done=True, sinks=[])
        await a.remove_run_watch("thread_a", "run_2")
        # expired: nobody takes a finished or removed watch's lease, nor renews it
        assert [t.key for t in await b.take_leases("replica-b", 200.0, lease=15)] == [
            ("thread_a", "run_3")
        ]
        assert await a.renew_leases("replica-a", 201.0, lease=15) == set()
        # one watch taken on its own: free, or already this replica's; not another's
        await a.add_thread_watch("thread_b", "api", 0.0)
        got = await a.take_lease("replica-a", ("thread_b", None), 202.0, lease=15)
        assert got is not None and got.key == ("thread_b", None)
        assert await a.take_lease("replica-a", ("thread_b", None), 203.0, lease=15) is not None
        assert await b.take_lease("replica-b", ("thread_b", None), 203.0, lease=15) is None
        late = await b.take_lease("replica-b", ("thread_b", None), 300.0, lease=15)
        assert late is not None and late.previous_owner == "replica-a"
        assert {(x.thread_id, x.run_id, x.owner) for x in await a.leases(301.0)} == {
            ("thread_b", None, "replica-b")
        }
