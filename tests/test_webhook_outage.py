"""A webhook outage costs about what it lasts, not the retry schedule's next step.

A real receiver on 127.0.0.1 (signatures checked by `standardwebhooks`) goes down and comes
back on the same port. The sink runs on an injected clock, so an hour of outage takes no
real hour: the clock moves a step at a time, one dispatch round per step, and stands still
while deliveries are in flight.
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Callable

import httpx
import pytest

from tests.fakes import FakeClock
from tests.receiver import Receiver
from watcher.config.settings import WebhookSettings
from watcher.core.transitions import Observed, detect
from watcher.core.webhook_health import EndpointHealth
from watcher.delivery.webhook import SINK, WebhookSink
from watcher.state.store import Store

pytestmark = pytest.mark.anyio

SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()


def settings(url: str, **extra: object) -> WebhookSettings:
    """The default schedule (0, 5 s, 5 min, 30 min, …) and max_age (72 h) unless given."""
    return WebhookSettings.model_validate({"url": url, "secret": [SECRET], **extra})


def record(
    store: Store, clock: FakeClock, run_id: str, first: int, count: int, max_age: float = 259200
) -> list[str]:
    """`count` completed steps of one run, as one poll would report them; their event ids."""
    store.add_run_watch("thread_o", run_id, "config")
    observed = [
        Observed(
            f"step_{run_id}_{i}",
            "thread.run.step",
            "completed",
            "thread_o",
            run_id,
            {
                "id": f"step_{run_id}_{i}",
                "object": "thread.run.step",
                "status": "completed",
                "run_id": run_id,
            },
        )
        for i in range(first, first + count)
    ]
    found = detect(store.known_states("thread_o", run_id), observed, now=int(clock.wall()))
    store.record(
        "thread_o",
        run_id,
        found.events,
        found.updates,
        cursor=None,
        done=False,
        sinks=[SINK],
        deadlines={SINK: clock.wall() + max_age},
    )
    return [e.id for e in found.events]


async def drive(
    sink: WebhookSink, clock: FakeClock, seconds: float, until: Callable[[], bool], step: float
) -> None:
    """Dispatch rounds until `until()`, or until `seconds` of injected time have passed
    (a round at that very time included)."""
    end = clock.t + seconds
    while clock.t <= end and not until():
        if not await sink.deliver_once():
            clock.t += step


def first_arrivals(receiver: Receiver) -> list[str]:
    seen: list[str] = []
    for event in receiver.events():
        if event["id"] not in seen:
            seen.append(event["id"])
    return seen


async def outage(
    tmp_path, down_for: float, *, runs: int, per_run: int, step: float, **extra: object
) -> tuple[Receiver, WebhookSink, dict[str, list[str]], float]:
    """Receiver down; events of `runs` runs recorded over the outage; receiver back.

    Returns how long (injected seconds) after its return everything was delivered.
    """
    # signatures carry the injected time, which must be close to the receiver's real one
    # once it is back: the clock starts `down_for` in the past
    clock = FakeClock(wall=time.time() - down_for)
    store = Store(tmp_path / "s.db")
    receiver = Receiver([SECRET])
    receiver.delay = 0.005
    sink = WebhookSink(settings(receiver.url, **extra), store, clock, jitter=lambda: 0.0)
    sent: dict[str, list[str]] = {f"run_{r}": [] for r in range(runs)}
    await drive(sink, clock, 1, lambda: False, step)  # a healthy endpoint, nothing to send
    receiver.down()
    down = clock.t
    for batch in range(per_run):  # a poll every second finds one more step of each run
        for run_id, ids in sent.items():
            ids += record(store, clock, run_id, batch, 1)
        await drive(sink, clock, 1 - step, lambda: False, step)
    await drive(sink, clock, down + down_for - clock.t, lambda: False, step)
    assert receiver.events() == []
    receiver.start()
    back = clock.t
    total = runs * per_run
    await drive(sink, clock, 900, lambda: len(set(first_arrivals(receiver))) == total, step)
    assert len(set(first_arrivals(receiver))) == total, "not everything was delivered"
    arrivals = first_arrivals(receiver)
    for ids in sent.values():  # per-run order kept
        assert [i for i in arrivals if i in ids] == ids
    assert store.queue_depth(SINK) == {"pending": 0, "dead": 0}
    await sink.aclose()
    receiver.close()
    return receiver, sink, sent, clock.t - back


async def test_a_5_s_outage_is_caught_up_within_10_s_of_the_return(tmp_path):
    _, _, _, took = await outage(tmp_path, 5, runs=4, per_run=3, step=0.25)
    assert took <= 10, f"delivered {took:.1f} s after the receiver came back"


async def test_a_1_h_outage_is_drained_within_60_s_at_the_endpoints_pace(tmp_path):
    receiver, sink, _, took = await outage(
        tmp_path, 3600, runs=20, per_run=10, step=1.0, max_concurrency=4
    )
    assert took <= 60, f"delivered {took:.1f} s after the receiver came back"
    assert 1 < receiver.max_in_flight <= 4  # drained in parallel, the cap kept
    # the schedule bounds the attempts against the dead endpoint: probes at most every 30 s
    # once it has been down a minute, plus each head's scheduled attempts
    assert sink.failed < 20 * 5 + 3600 / 30 + 60


async def test_max_age_still_dead_letters_while_the_endpoint_is_down(tmp_path):
    clock = FakeClock(wall=time.time())
    store = Store(tmp_path / "s.db")
    transport = httpx.MockTransport(lambda r: httpx.Response(503))
    sink = WebhookSink(
        settings("https://h.example.test/x", max_age=600),
        store,
        clock,
        transport=transport,
        jitter=lambda: 0.0,
    )
    for run in range(3):
        record(store, clock, f"run_{run}", 0, 2, max_age=600)
    await drive(sink, clock, 700, lambda: store.queue_depth(SINK)["pending"] == 0, 1.0)
    assert store.queue_depth(SINK) == {"pending": 0, "dead": 6}
    assert all("max_age" in (it.last_error or "") for it in store.outbox(SINK))


async def test_an_event_the_endpoint_always_fails_is_not_retried_on_every_success(tmp_path):
    """Another run's 2xx releases the backlog, but at most every 30 s: a poison event
    costs the endpoint a request every 30 s at most, not one per delivery."""
    tries: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bad = '"run_bad"' in request.content.decode()
        if bad:
            tries.append(request.headers["webhook-id"])
        return httpx.Response(500 if bad else 204)

    clock = FakeClock(wall=time.time())
    store = Store(tmp_path / "s.db")
    sink = WebhookSink(
        settings("https://h.example.test/x"),
        store,
        clock,
        transport=httpx.MockTransport(handler),
        jitter=lambda: 0.0,
    )
    store.add_run_watch("thread_o", "run_bad", "config")
    record(store, clock, "run_bad", 0, 1)
    for second in range(120):  # a new event of another run every second, delivered
        record(store, clock, f"run_{second}", 0, 1)
        await drive(sink, clock, 1, lambda: False, 0.5)
    # its first attempt, a probe and the first release at once, then one release per 30 s
    assert 2 <= len(tries) <= 3 + 120 / 30 + 1
    assert store.queue_depth(SINK) == {"pending": 1, "dead": 0}


async def test_a_restart_probes_the_endpoint_at_once(tmp_path):
    """Heads scheduled minutes ahead by a previous process go out when the endpoint answers."""
    clock = FakeClock(wall=time.time())
    store = Store(tmp_path / "s.db")
    receiver = Receiver([SECRET])
    try:
        receiver.down()
        ids = record(store, clock, "run_1", 0, 3)
        before = WebhookSink(settings(receiver.url), store, clock, jitter=lambda: 0.0)
        await drive(before, clock, 6, lambda: False, 1.0)  # attempts at 0 and 5 s: +300 s
        await before.aclose()
        receiver.start()
        after = WebhookSink(settings(receiver.url), store, clock, jitter=lambda: 0.0)
        start = clock.t
        await drive(after, clock, 600, lambda: len(receiver.events()) == 3, 1.0)
        assert [e["id"] for e in receiver.events()] == ids
        assert clock.t - start <= 2
        await after.aclose()
    finally:
        receiver.close()


def test_probe_gaps_are_half_the_outage_between_1_and_30_s_and_honour_retry_after():
    health = EndpointHealth(failing_since=None, next_probe=math.inf)
    gaps = []
    now = 0.0
    for _ in range(12):
        health.failed(now)
        gaps.append(health.next_probe - now)
        now = health.next_probe
    assert gaps[:4] == [1.0, 1.0, 1.0, 1.5] and max(gaps) == 30.0 == gaps[-1]
    health.failed(now, retry_after=120.0)
    assert health.next_probe == now + 120.0
    health.answered(now)  # back: the backlog is released at once, the first time
    assert not health.failing and health.take_release(now)
    health.failed(now + 1)
    health.answered(now + 2)  # back again 2 s later: released 30 s after the last release
    assert not health.take_release(now + 29) and health.take_release(now + 30)
