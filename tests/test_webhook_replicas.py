"""Webhook delivery by replicas sharing one PostgreSQL database (`tests/pg.py`): each event
is posted by one replica at a time, each run's events in order, and a head claimed by a
replica that died mid-delivery goes out from another once the claim expires."""

from __future__ import annotations

import base64
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator

import anyio
import anyio.to_thread
import pytest

from tests.fakes import FakeClock
from tests.pg import PgServer, open_stores, pg  # noqa: F401  (the fixture)
from tests.receiver import Receiver
from watcher.config.settings import WebhookSettings
from watcher.core.events import Event, event_id
from watcher.core.transitions import ObjectState
from watcher.delivery.webhook import SINK, WebhookSink
from watcher.state.store_pg import PgStore
from watcher.state.store_pg_adapter import PgAsyncStore

pytestmark = pytest.mark.anyio

SECRET = "whsec_" + base64.b64encode(b"r" * 32).decode()
STATUSES = ("queued", "in_progress", "requires_action", "completed")
_names = itertools.count()


@pytest.fixture
async def replicas(pg: PgServer) -> AsyncIterator[list[PgStore]]:  # noqa: F811
    async with open_stores(pg.database(f"webhook_replicas_{next(_names)}")) as stores:
        yield stores


@pytest.fixture
def receiver() -> AsyncIterator[Receiver]:
    r = Receiver([SECRET])
    yield r
    r.close()


def settings(url: str, **extra: object) -> WebhookSettings:
    return WebhookSettings.model_validate(
        {"url": url, "secret": [SECRET], "schedule": [0, 5, 60], "max_age": 300, **extra}
    )


async def backlog(store: PgStore, clock: FakeClock, runs: int) -> dict[str, list[str]]:
    """Each run's events recorded for the webhook (one transition each); their ids, by run."""
    ids: dict[str, list[str]] = {}
    for i in range(runs):
        run = f"run_{i}"
        await store.add_run_watch("thread_r", run, "api")
        for n, status in enumerate(STATUSES):
            ev = Event(
                id=event_id(run, status),
                type=f"thread.run.{status}",
                created_at=int(clock.wall()),
                data={"id": run, "object": "thread.run", "status": status},
                previous_status=STATUSES[n - 1] if n else None,
                thread_id="thread_r",
                run_id=run,
            )
            st = {run: ObjectState(status, frozenset(STATUSES[: n + 1]))}
            await store.record(
                "thread_r",
                run,
                [ev],
                st,
                cursor=None,
                done=False,
                sinks=[SINK],
                deadlines={SINK: clock.wall() + 300},
            )
            ids.setdefault(run, []).append(ev.id)
    return ids


def in_order(attempts: list[str], ids: dict[str, list[str]]) -> None:
    """Each run's events reached the receiver in the order they were recorded (a repeat of
    the one just posted, at most: at-least-once, never out of order)."""
    for run, want in ids.items():
        mine = [a for a in attempts if a in want]
        firsts = [a for k, a in enumerate(mine) if k == 0 or mine[k - 1] != a]
        assert firsts == want, run


async def wait_at(receiver: Receiver, predicate: object, what: str) -> None:
    await anyio.to_thread.run_sync(lambda: receiver.wait_for(predicate, 20.0, what))


async def test_two_replicas_post_each_event_once_in_order_per_run(
    replicas: list[PgStore], receiver: Receiver
) -> None:
    clock = FakeClock(wall=time.time())  # the receiver checks timestamps against its clock
    ids = await backlog(replicas[0], clock, runs=8)
    every = {i for run in ids.values() for i in run}
    receiver.delay = 0.05  # deliveries overlap: two posts of one event at once would show
    sinks = [
        WebhookSink(
            settings(receiver.url, max_concurrency=4),
            PgAsyncStore(store),
            clock,
            jitter=lambda: 0.0,
            owner=f"replica-{n}",
        )
        for n, store in enumerate(replicas)
    ]
    try:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for sink in sinks:
                    tg.start_soon(sink.run)
                await wait_at(receiver, lambda: every <= set(receiver.attempts), "every event")
                tg.cancel_scope.cancel()
    finally:
        for sink in sinks:
            await sink.aclose()
    assert receiver.overlaps == []
    assert Counter(receiver.attempts) == Counter(every)  # no failure: each exactly once
    in_order(receiver.attempts, ids)
    assert all(sink.delivered for sink in sinks)  # both took a share


async def test_a_replica_dying_mid_delivery_leaves_the_head_to_another_after_the_hold(
    replicas: list[PgStore], receiver: Receiver
) -> None:
    clock = FakeClock(wall=time.time())  # the receiver checks timestamps against its clock
    ids = await backlog(replicas[0], clock, runs=2)
    first = ids["run_0"][0]
    dying = WebhookSink(
        settings(receiver.url, max_concurrency=1),
        PgAsyncStore(replicas[0]),
        clock,
        jitter=lambda: 0.0,
        owner="replica-dying",
    )
    other = WebhookSink(
        settings(receiver.url), PgAsyncStore(replicas[1]), clock, owner="replica-other"
    )
    receiver.delay = 0.5
    try:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:  # dies while its POST is in flight
                tg.start_soon(dying.deliver_once)
                await wait_at(receiver, lambda: receiver.in_flight >= 1, "the first post")
                receiver.delay = 0.0
                tg.cancel_scope.cancel()
            await wait_at(receiver, lambda: receiver.in_flight == 0, "that post's end")
            assert receiver.attempts == [first]  # it reached the receiver, unacknowledged
            while await other.deliver_once():  # run_1's events; run_0's head is claimed
                pass
            assert receiver.attempts.count(first) == 1
            assert set(receiver.attempts) == {first, *ids["run_1"]}
            clock.t += other.hold  # the claim expires
            while await other.deliver_once():
                pass
    finally:
        await dying.aclose()
        await other.aclose()
    assert receiver.overlaps == []
    assert receiver.attempts.count(first) == 2  # at least once: the dead replica's, then
    in_order(receiver.attempts, ids)
    assert await replicas[0].queue_depth(SINK) == {"pending": 0, "dead": 0}


async def test_a_replica_stopping_gives_its_claims_back_at_once(
    replicas: list[PgStore], receiver: Receiver
) -> None:
    clock = FakeClock(wall=time.time())
    ids = await backlog(replicas[0], clock, runs=1)
    first = ids["run_0"][0]
    stopping, other = (
        WebhookSink(settings(receiver.url), PgAsyncStore(store), clock, owner=f"replica-{n}")
        for n, store in enumerate(replicas)
    )
    receiver.delay = 0.5
    try:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:  # a stop cuts its delivery short
                tg.start_soon(stopping.run)
                await wait_at(receiver, lambda: receiver.in_flight >= 1, "the first post")
                receiver.delay = 0.0
                tg.cancel_scope.cancel()
            await stopping.aclose()
            await wait_at(receiver, lambda: receiver.in_flight == 0, "that post's end")
            while await other.deliver_once():  # at once: no hold to wait out
                pass
    finally:
        await stopping.aclose()
        await other.aclose()
    assert receiver.overlaps == []
    assert receiver.attempts.count(first) == 2
    in_order(receiver.attempts, ids)


async def test_replicas_probing_a_failing_endpoint_never_probe_with_one_event_at_once(
    replicas: list[PgStore], receiver: Receiver
) -> None:
    clock = FakeClock(wall=time.time())
    ids = await backlog(replicas[0], clock, runs=2)
    heads = await replicas[0].due_heads(SINK, clock.wall())
    for head in heads:  # failed before: scheduled far ahead, so only probes go out
        await replicas[0].reschedule(SINK, head.seq, at=clock.wall() + 300, error="earlier")
    sinks = [  # fresh processes: each probes at once
        WebhookSink(settings(receiver.url), PgAsyncStore(store), clock, owner=f"replica-{n}")
        for n, store in enumerate(replicas)
    ]
    receiver.delay = 0.2
    receiver.script = [503, 503]
    try:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for sink in sinks:
                    tg.start_soon(sink.deliver_once)
    finally:
        for sink in sinks:
            await sink.aclose()
    assert receiver.overlaps == []
    # the oldest pending event, and the next oldest (the other's claimed): one post each
    assert sorted(receiver.attempts) == sorted(run[0] for run in ids.values())
    seqs = {head.seq for head in heads}
    probed = [item for item in await replicas[1].outbox(SINK) if item.seq in seqs]
    assert [h.last_error for h in probed] == ["HTTP 503", "HTTP 503"]  # back on schedule
    assert await replicas[1].due_heads(SINK, clock.wall() + 299) == []
