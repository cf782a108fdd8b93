"""Replicas on one PostgreSQL database share the watches through leases: two in-process
watchers over ASGI to the simulator, on one shared manual clock. Each watch is polled by
one replica; when one dies the other takes every watch over within lease + interval, from
the stored cursor, recording nothing twice and missing nothing; a clean stop hands over
at once."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio
import httpx
import pytest

from tests.fakes import FakeClock
from tests.inproc import Lines, sim_client
from tests.pg import PgServer, pg  # noqa: F401  (the fixture)
from watcher.config.settings import PollSettings, Settings, StateSettings, WatchSpec
from watcher.service.http_api import create_http_app
from watcher.service.metrics import Metrics
from watcher.simulator.app import ManualClock, create_app
from watcher.simulator.scenario import parse_scenario
from watcher.state.store_pg import PgStore
from watcher.state.store_pg_adapter import PgAsyncStore
from watcher.watching.app import Watcher
from watcher.watching.config_watches import add_configured_watches
from watcher.watching.leases import EARLIEST

pytestmark = pytest.mark.anyio

EPOCH = 1_732_450_000  # the fake clock's wall time at start: the simulator's time zero
LEASE, INTERVAL = 3.0, 1.0
LIFE = [["queued", 0], ["in_progress", 2], ["completed", 9]]
SCENARIO = {
    "epoch": EPOCH,
    "threads": [{"id": "thread_1", "runs": [{"id": f"run_{x}", "timeline": LIFE} for x in "abcd"]}],
    "responses": [{"id": "resp_1", "timeline": LIFE}],
    "batches": [{"id": "batch_1", "timeline": [["validating", 1], ["completed", 9]]}],
}
_names = itertools.count()


@dataclasses.dataclass
class Replica:
    name: str
    watcher: Watcher
    lines: Lines
    requests: list[httpx.Request]
    metrics: Metrics

    def held(self) -> set[tuple[str, str | None]]:
        status = self.watcher.replica()
        assert status is not None
        return {(h["thread_id"], h["run_id"]) for h in status["held"]}  # type: ignore[attr-defined]

    async def poll_all(self) -> None:
        """One round of every watch this replica runs (what its scheduler would do)."""
        for thread_id, run_id in sorted(self.held(), key=lambda k: (k[0], k[1] or "")):
            with contextlib.suppress(KeyError):  # ended here
                await self.watcher.poll_once(thread_id, run_id)

    def polled(self) -> set[str]:
        """The objects this replica asked the API about (runs, responses, batches)."""
        return {r.url.path.rsplit("/", 1)[-1] for r in self.requests}

    def takeovers(self) -> float:
        value = self.metrics.registry.get_sample_value("runstep_watcher_lease_takeovers_total")
        return value or 0.0


class World:
    def __init__(self, url: str) -> None:
        self.url = url
        self.sim = ManualClock()
        self.app = create_app(parse_scenario(SCENARIO), clock=self.sim)
        self.clock = FakeClock(start=1000.0, wall=EPOCH)
        self.stores: list[PgStore] = []

    async def replica(self, name: str, watch: Sequence[WatchSpec] = ()) -> Replica:
        store = await PgStore.open(self.url)
        self.stores.append(store)
        client, requests = sim_client(self.app, self.clock)
        state = StateSettings(url=self.url, lease=LEASE)
        poll = PollSettings(interval=INTERVAL)
        settings = Settings(api=client.api, poll=poll, state=state, watch=tuple(watch))
        lines, metrics = Lines(), Metrics()
        watcher = Watcher(
            settings,
            client=client,
            store=PgAsyncStore(store),
            clock=self.clock,
            sinks=[lines],
            metrics=metrics,
            replica=name,
        )
        return Replica(name, watcher, lines, requests, metrics)

    def advance(self, seconds: float) -> None:
        self.clock.t += seconds
        self.sim.advance(seconds)

    @property
    def t(self) -> float:
        return self.sim.now()


@pytest.fixture
async def world(pg: PgServer) -> AsyncIterator[World]:  # noqa: F811
    name = f"leases_{next(_names)}"
    w = World(pg.database(name).url)
    try:
        yield w
    finally:
        for store in w.stores:
            await store.close()


def _by_object(*replicas: Replica) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in replicas:
        for e in r.lines.events:
            out.setdefault(e["data"]["id"], []).append(e["type"].rsplit(".", 1)[-1])
    return out


async def test_each_watch_is_polled_by_one_replica_and_a_dead_ones_are_taken_over(
    world: World,
) -> None:
    a, b = await world.replica("replica-a"), await world.replica("replica-b")
    with anyio.fail_after(30):
        # a watch added through a replica is that replica's at once
        assert await a.watcher.add_watch("thread_1", "run_a")
        assert await a.watcher.add_watch("response:", "resp_1")
        assert await b.watcher.add_watch("thread_1", "run_b")
        assert await b.watcher.add_watch("batch:", None)  # finds batch_1: b's
        assert await a.watcher.add_watch("thread_1", "run_c")
        assert not await b.watcher.add_watch("thread_1", "run_c")  # known: a's still
        assert a.held() == {("thread_1", "run_a"), ("thread_1", "run_c"), ("response:", "resp_1")}
        assert b.held() == {("thread_1", "run_b"), ("batch:", None)}
        for _ in range(4):  # both alive: each polls what it holds, nothing else
            for r in (a, b):
                await r.watcher.lease_step()
                await r.poll_all()
            world.advance(INTERVAL)
        assert ("batch:", "batch_1") in b.held()
        assert a.polled() == {"run_a", "run_c", "resp_1"} | {"steps"}
        assert b.polled() - {"batches", "steps"} == {"run_b", "batch_1"}
        assert not a.held() & b.held()
        assert a.takeovers() == b.takeovers() == 0
        # replica a dies (it stops renewing; its leases stay until they expire)
        died, mine = world.t - INTERVAL, a.held()
        a.requests.clear()
        first_poll: dict[tuple[str, str | None], float] = {}
        while world.t < 12:
            await b.watcher.lease_step()
            for key in mine & b.held():
                first_poll.setdefault(key, world.t)
            await b.poll_all()
            world.advance(INTERVAL)
        assert set(first_poll) == mine  # every watch of a's, taken over by b
        assert max(first_poll.values()) - died <= LEASE + INTERVAL
        assert min(first_poll.values()) - died >= LEASE  # not before a's lease expired
        assert b.takeovers() == len(mine)
    events = [e["id"] for r in (a, b) for e in r.lines.events]
    assert len(events) == len(set(events))  # nothing recorded (or printed) twice
    assert _by_object(a, b) == {
        **{f"run_{x}": ["queued", "in_progress", "completed"] for x in "abc"},
        "resp_1": ["queued", "in_progress", "completed"],
        "batch_1": ["validating", "completed"],
    }


async def test_a_replica_that_stops_cleanly_hands_over_at_once_one_that_dies_at_expiry(
    world: World,
) -> None:
    a, b = await world.replica("replica-a"), await world.replica("replica-b")
    for x in "abcd":
        assert await b.watcher.add_watch("thread_1", f"run_{x}")
    await b.watcher.remove_watch("thread_1", "run_d")  # not a lease left behind
    assert b.held() == {("thread_1", f"run_{x}") for x in "abcd"}

    async def run_until_ready(r: Replica, tg: anyio.abc.TaskGroup) -> None:
        ready = anyio.Event()
        r.watcher.on_ready(ready.set)
        tg.start_soon(r.watcher.run)
        await ready.wait()

    everything = {("thread_1", f"run_{x}") for x in "abc"}
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:  # a's
            async with anyio.create_task_group() as b_tasks:
                # b's run() starts with what it holds; a's (a new replica) takes nothing held
                await run_until_ready(b, b_tasks)
                await run_until_ready(a, tg)
                assert a.held() == set() and b.held() == everything  # run_d's lease went
                b.watcher.stop()  # a clean stop: b's run() returns
            assert b.held() == set()  # a clean stop: b's leases released
            await a.watcher.lease_step()  # the same instant: nothing expired, all free
            assert a.held() == everything
            assert a.takeovers() == 0  # released, not taken over
            tg.cancel_scope.cancel()  # now a dies: its task cancelled, leases not released
        await b.watcher.lease_step()
        assert b.held() == set()  # a's leases still run
        world.advance(LEASE + 0.5)
        await b.watcher.lease_step()
        assert b.held() == everything
        assert b.takeovers() == 3
    # /status and /metrics show the replica and its leases
    app = create_http_app(b.watcher, b.metrics, token=None)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
    ) as http:
        status: Any = (await http.get("/status")).json()["replica"]
        text = (await http.get("/metrics")).text
    assert status == {
        "id": "replica-b",
        "lease_seconds": LEASE,
        "leases_held": 3,
        "held": [{"thread_id": "thread_1", "run_id": f"run_{x}"} for x in "abc"],
        "takeovers": 3,
    }
    assert "runstep_watcher_leases_held 3.0" in text
    assert "runstep_watcher_lease_takeovers_total 3.0" in text


async def test_config_watches_are_made_true_once_and_a_removal_reaches_the_holder(
    world: World,
) -> None:
    specs = [WatchSpec(thread_id="thread_1", run_id=f"run_{x}") for x in "abc"]
    specs.append(WatchSpec(response_id="resp_1"))
    a = await world.replica("replica-a", specs)
    b = await world.replica("replica-b", specs)
    keys = {("thread_1", f"run_{x}") for x in "abc"} | {("response:", "resp_1")}
    with anyio.fail_after(30):
        # one replica at a time: b waits while another holds the config's lock
        async with world.stores[0].exclusive():
            with anyio.move_on_after(1.0) as waited:
                await add_configured_watches(b.watcher.registry)
            assert waited.cancelled_caught
        async with anyio.create_task_group() as tg:  # both start together
            for r in (a, b):
                tg.start_soon(add_configured_watches, r.watcher.registry)
        for r in (a, b):
            await r.watcher.lease_step()
        assert a.held() | b.held() == keys and not a.held() & b.held()
        holder, other = (a, b) if ("thread_1", "run_a") in a.held() else (b, a)
        # the other replica's reload drops run_a from the config: its holder stops it
        await other.watcher.reload(other.watcher.settings.model_copy(update={"watch": specs[1:]}))
        await holder.watcher.lease_step()
        assert ("thread_1", "run_a") not in holder.held()
        page, _ = await holder.watcher.watches()
        assert ("thread_1", "run_a") not in {(w["thread_id"], w["run_id"]) for w in page}
        await other.watcher.lease_step()  # takes what the holder handed over (its share)
        # run_b, run_c and resp_1 (a response is a watch of one object, like a run)
        assert holder.watcher.counts()["runs"] + other.watcher.counts()["runs"] == 3


async def test_replicas_hold_a_share_each_and_a_survivor_takes_all(world: World) -> None:
    specs = [WatchSpec(thread_id="thread_1", run_id=f"run_{x}") for x in "abcd"]
    a = await world.replica("replica-a", specs)
    b = await world.replica("replica-b", specs)
    keys = {("thread_1", f"run_{x}") for x in "abcd"}
    with anyio.fail_after(30):
        await add_configured_watches(a.watcher.registry)
        await a.watcher.lease_step()
        assert a.held() == keys  # alone so far: every watch
        await b.watcher.lease_step()  # b joins: nothing is free yet
        await a.watcher.lease_step()  # a hands over what is more than its share
        await b.watcher.lease_step()  # b takes it
        assert len(a.held()) == len(b.held()) == 2 and a.held() | b.held() == keys
        assert a.watcher.counts()["runs"] == b.watcher.counts()["runs"] == 2
        await a.poll_all()
        await b.poll_all()
        runs = [
            {p for q in r.requests for p in q.url.path.split("/") if p.startswith("run_")}
            for r in (a, b)
        ]
        assert runs[0] | runs[1] == {"run_a", "run_b", "run_c", "run_d"}
        assert runs[0] & runs[1] == set()  # each run polled by one replica
        # b dies: no more ticks; a ticks on, and as b's leases near their end, sooner
        keeper = a.watcher.leases
        assert keeper is not None
        world.advance(LEASE - 0.5)
        await a.watcher.lease_step()
        assert a.held() != keys and keeper.wait() == pytest.approx(0.5 + EARLIEST)
        world.advance(keeper.wait())
        await a.watcher.lease_step()  # the moment b's leases end: a has them
        assert a.held() == keys and a.takeovers() == 2


async def test_a_dead_replicas_watches_go_to_the_first_survivor_then_to_its_successor(
    world: World,
) -> None:
    """The replacement of a dead replica (restarted at once) counts in the shares before
    its leases end; its watches still go to the first replica ticking then, which hands
    the extra over to the replacement afterwards."""
    specs = [WatchSpec(thread_id="thread_1", run_id=f"run_{x}") for x in "abcd"]
    specs.append(WatchSpec(response_id="resp_1"))
    a, b = await world.replica("replica-a", specs), await world.replica("replica-b", specs)
    with anyio.fail_after(30):
        await add_configured_watches(a.watcher.registry)
        for r in (a, b, a, b):
            await r.watcher.lease_step()
        assert (len(a.held()), len(b.held())) == (3, 2)  # shares of 5 over 2
        dead = b.held()
        c = await world.replica("replica-c", specs)  # b is SIGKILLed; c replaces it at once
        await c.watcher.lease_step()
        assert c.held() == set()  # nothing free: b's leases run on
        world.advance(LEASE - 0.5)
        for r in (a, c):  # a renews its own; c ticks on, holding nothing
            await r.watcher.lease_step()
        world.advance(0.5)  # b's leases end
        await a.watcher.lease_step()
        assert dead <= a.held()  # a takes them at once, beyond its share
        await a.watcher.lease_step()  # then hands over what is beyond its share
        await c.watcher.lease_step()
        assert len(a.held()) + len(c.held()) == 5 and not a.held() & c.held()
        assert len(c.held()) == 2 and a.takeovers() == 2
