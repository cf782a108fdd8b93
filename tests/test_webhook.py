"""Webhook delivery from the durable outbox, in-process: real store on disk, real HTTP on
loopback, signatures checked by the `standardwebhooks` reference implementation."""

from __future__ import annotations

import base64
import time

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.fakes import FakeClock
from tests.receiver import Receiver
from watcher.config.settings import WebhookSettings
from watcher.core.transitions import Observed, detect
from watcher.delivery.webhook import SINK, WebhookSink, next_attempt_delay, sign
from watcher.state.store import Store

pytestmark = pytest.mark.anyio

SECRET_A = "whsec_" + base64.b64encode(b"a" * 32).decode()
SECRET_B = "whsec_" + base64.b64encode(b"b" * 24).decode()


def settings(url: str, secrets=(SECRET_A,), **extra) -> WebhookSettings:
    return WebhookSettings.model_validate(
        {"url": url, "secret": list(secrets), "schedule": [0, 5, 60], "max_age": 300, **extra}
    )


def record(store: Store, clock: FakeClock, run_id: str, *objs: tuple[str, str]) -> list[str]:
    store.add_run_watch("thread_1", run_id, "config")
    observed = [
        Observed(
            oid,
            "thread.run.step",
            st,
            "thread_1",
            run_id,
            {"id": oid, "object": "thread.run.step", "status": st, "run_id": run_id},
        )
        for oid, st in objs
    ]
    found = detect(store.known_states("thread_1", run_id), observed, now=int(clock.wall()))
    store.record(
        "thread_1",
        run_id,
        found.events,
        found.updates,
        cursor=None,
        done=False,
        sinks=[SINK],
        deadlines={SINK: clock.wall() + 300},
    )
    return [e.id for e in found.events]


def test_signature_verifies_with_the_reference_implementation():
    body = '{"id":"evt_1","object":"event"}'
    ts = int(time.time())
    header = sign(
        [base64.b64decode(SECRET_A[6:]), base64.b64decode(SECRET_B[6:])], "evt_1", ts, body
    )
    headers = {"webhook-id": "evt_1", "webhook-timestamp": str(ts), "webhook-signature": header}
    assert len(header.split(" ")) == 2
    for secret in (SECRET_A, SECRET_B):
        assert Webhook(secret).verify(body, headers) == {"id": "evt_1", "object": "event"}


@pytest.mark.parametrize(
    ("attempts", "retry_after", "expected"),
    [(1, None, 5.0), (2, None, 60.0), (9, None, 60.0), (1, 30.0, 30.0)],
)
def test_next_attempt_delay(attempts, retry_after, expected):
    assert next_attempt_delay(attempts, [0, 5, 60], retry_after=retry_after, jitter=0.0) == expected


def test_jitter_stretches_by_at_most_ten_percent():
    assert next_attempt_delay(1, [0, 100], retry_after=None, jitter=0.999) < 110.0


async def test_delivers_signed_bodies_exactly_as_stored(tmp_path):
    receiver = Receiver([SECRET_A, SECRET_B])
    try:
        clock = FakeClock(wall=time.time())
        store = Store(tmp_path / "s.db")
        ids = record(store, clock, "run_1", ("s1", "in_progress"), ("s2", "completed"))
        sink = WebhookSink(settings(receiver.url, (SECRET_A, SECRET_B)), store, clock)
        assert await sink.deliver_once() == 1  # one head per run: s1 first
        assert await sink.deliver_once() == 1
        assert await sink.deliver_once() == 0
        await sink.aclose()
        got = receiver.received
        assert [r["event"]["id"] for r in got] == ids
        assert [r["headers"]["webhook-id"] for r in got] == ids
        assert got[0]["headers"]["content-type"] == "application/json"
        assert set(got[0]["event"]) == {
            "id",
            "object",
            "type",
            "created_at",
            "data",
            "previous_status",
        }
        assert store.queue_depth(SINK) == {"pending": 0, "dead": 0}
    finally:
        receiver.close()


async def test_500s_are_retried_on_schedule_and_the_endpoint_probed(tmp_path):
    receiver = Receiver([SECRET_A])
    receiver.script = [500, 503, 502]
    try:
        clock = FakeClock(wall=time.time())
        store = Store(tmp_path / "s.db")
        [eid] = record(store, clock, "run_1", ("s1", "completed"))
        sink = WebhookSink(settings(receiver.url), store, clock, jitter=lambda: 0.0)
        assert await sink.deliver_once() == 1  # 500
        assert await sink.deliver_once() == 0  # not due for 5 s, no probe for 1 s
        clock.t += 1
        assert await sink.deliver_once() == 1  # a probe: 503, the schedule untouched
        [item] = store.outbox(SINK)
        assert (item.attempts, item.last_error) == (1, "HTTP 503")
        assert item.next_attempt_at == clock.wall() + 4
        clock.t += 4
        assert await sink.deliver_once() == 1  # the schedule's attempt: 502, next in 60 s
        clock.t += 1
        assert await sink.deliver_once() == 0  # probes at half the outage so far: 2.5 s
        clock.t += 1.5
        assert await sink.deliver_once() == 1  # the probe: 2xx
        assert receiver.attempts == [eid] * 4
        assert [e["id"] for e in receiver.events()] == [eid]
        assert store.queue_depth(SINK) == {"pending": 0, "dead": 0}
        await sink.aclose()
    finally:
        receiver.close()


async def test_failing_run_holds_back_only_itself(tmp_path):
    seen = []

    def handler(request: httpx.Request):
        body = request.content.decode()
        seen.append(request.headers["webhook-id"])
        return httpx.Response(500 if '"run_id":"run_bad"' in body else 200)

    clock = FakeClock(wall=time.time())
    store = Store(tmp_path / "s.db")
    bad = record(store, clock, "run_bad", ("b1", "completed"), ("b2", "completed"))
    good = record(store, clock, "run_good", ("g1", "completed"), ("g2", "completed"))
    sink = WebhookSink(
        settings("https://hooks.example.test/x"),
        store,
        clock,
        transport=httpx.MockTransport(handler),
    )
    for _ in range(4):
        await sink.deliver_once()
    assert bad[1] not in seen  # b2 waits behind b1
    assert good[0] in seen and good[1] in seen
    assert store.queue_depth(SINK)["pending"] == 2


async def test_400_is_dead_at_once_and_replay_sends_it(tmp_path):
    receiver = Receiver([SECRET_A])
    receiver.script = [400]
    try:
        clock = FakeClock(wall=time.time())
        store = Store(tmp_path / "s.db")
        [eid] = record(store, clock, "run_1", ("s1", "completed"))
        sink = WebhookSink(settings(receiver.url), store, clock)
        await sink.deliver_once()
        assert store.queue_depth(SINK) == {"pending": 0, "dead": 1}
        [item] = store.outbox(SINK)
        assert item.state == "dead" and "refused" in (item.last_error or "")
        assert store.replay(SINK, deadline=clock.wall() + 300, event_id=eid) == 1
        await sink.deliver_once()
        assert [e["id"] for e in receiver.events()] == [eid]
        assert store.queue_depth(SINK) == {"pending": 0, "dead": 0}
        await sink.aclose()
    finally:
        receiver.close()


async def test_past_max_age_is_dead(tmp_path):
    clock = FakeClock(wall=time.time())
    store = Store(tmp_path / "s.db")
    record(store, clock, "run_1", ("s1", "completed"))
    transport = httpx.MockTransport(lambda r: httpx.Response(503))
    sink = WebhookSink(
        settings("https://h.example.test/x"), store, clock, transport=transport, jitter=lambda: 0.0
    )
    for step in (0, 5, 60, 60, 60, 60):
        clock.t += step
        await sink.deliver_once()
    assert store.queue_depth(SINK) == {"pending": 0, "dead": 1}
    assert "max_age" in (store.outbox(SINK)[0].last_error or "")


async def test_redirects_are_failures_not_followed(tmp_path):
    hits = []

    def handler(request):
        hits.append(str(request.url))
        return httpx.Response(307, headers={"location": "https://elsewhere.test/"})

    clock = FakeClock(wall=time.time())
    store = Store(tmp_path / "s.db")
    record(store, clock, "run_1", ("s1", "completed"))
    sink = WebhookSink(
        settings("https://h.example.test/x"), store, clock, transport=httpx.MockTransport(handler)
    )
    await sink.deliver_once()
    assert hits == ["https://h.example.test/x"]
    assert "redirects are not followed" in (store.outbox(SINK)[0].last_error or "")


async def test_a_user_agent_in_the_webhook_headers_replaces_ours(tmp_path):
    seen = []

    def handler(request: httpx.Request):
        seen.append(request)
        return httpx.Response(200)

    clock = FakeClock(wall=time.time())
    store = Store(tmp_path / "s.db")
    record(store, clock, "run_1", ("s1", "completed"))
    sink = WebhookSink(
        settings("https://hooks.example.test/x", headers={"User-Agent": "acme-relay/2"}),
        store,
        clock,
        transport=httpx.MockTransport(handler),
    )
    assert await sink.deliver_once() == 1
    assert seen[0].headers.get_list("user-agent") == ["acme-relay/2"]
    await sink.aclose()
