"""Delays a hostile server sends (Retry-After, retry-after-ms, openai-poll-after-ms, a
webhook's Retry-After) are parsed strictly and capped: none stops polling or delivery for
good. Through a hostile Starlette app over ASGITransport, a hostile receiver over httpx,
and the state file on disk."""

from __future__ import annotations

import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes import FakeClock
from watcher.api.client import ApiClient
from watcher.api.ratelimit import RateGate
from watcher.config.settings import ApiSettings, RetrySettings, WebhookSettings
from watcher.core.rate_headers import MAX_SERVER_DELAY, parse_duration, parse_rate_hint
from watcher.delivery.webhook import SINK, WebhookSink
from watcher.service.pause_keeper import PauseKeeper
from watcher.state.astore import AsyncStore
from watcher.state.store import Store

pytestmark = pytest.mark.anyio
START = 1000.0


def hostile_api(first: dict[str, str], status: int = 429) -> Starlette:
    """Answers `status` with the headers `first` once, then 200 with `first` again."""
    calls = 0

    async def run(request: Request) -> JSONResponse:
        nonlocal calls
        calls += 1
        if calls == 1:
            error = {"message": "slow down", "type": "requests", "param": None, "code": None}
            return JSONResponse({"error": error}, status_code=status, headers=first)
        return JSONResponse({"id": "run_1"}, headers=first)

    return Starlette(routes=[Route("/v1/threads/{t}/runs/{r}", run)])


def client_for(app: Starlette, clock: FakeClock) -> ApiClient:
    return ApiClient(
        ApiSettings(base_url="http://127.0.0.1:9/v1"),
        RetrySettings(attempts=3, initial_delay=0.5, max_delay=30.0),
        clock=clock,
        gate=RateGate(clock),
        transport=httpx.ASGITransport(app),
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "1e12"},
        {"retry-after": "inf"},
        {"retry-after": "Infinity"},
        {"retry-after-ms": "1e15"},
        {"retry-after-ms": "1e999", "retry-after": "99999999"},
    ],
)
async def test_an_absurd_retry_after_on_429_pauses_at_most_the_maximum(headers):
    clock = FakeClock(start=START)
    client = client_for(hostile_api(headers), clock)
    response = await client.get(("threads", "thread_1", "runs", "run_1"))
    assert response.body == {"id": "run_1"}
    assert client.gate.paused_until <= START + MAX_SERVER_DELAY
    assert clock.t - START <= MAX_SERVER_DELAY + 1.0  # polling goes on


@pytest.mark.parametrize("value", ["-5", "nan", "NaN", "-inf", "", "1e999", "0x10", "5 ms"])
async def test_a_bad_retry_after_is_ignored(value):
    clock = FakeClock(start=START)
    client = client_for(hostile_api({"retry-after": value}), clock)
    await client.get(("threads", "thread_1", "runs", "run_1"))
    assert clock.t - START <= 2.0  # the default pause and backoff, not the header


@pytest.mark.parametrize(
    ("value", "expected"),
    [("-5", None), ("nan", None), ("inf", None), ("1e15", MAX_SERVER_DELAY), ("1500", 1.5)],
)
async def test_poll_after_is_strict_and_capped(value, expected):
    clock = FakeClock(start=START)
    client = client_for(hostile_api({"openai-poll-after-ms": value}, status=500), clock)
    response = await client.get(("threads", "thread_1", "runs", "run_1"))
    assert response.poll_after == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1s", 1.0),
        ("20ms", 0.02),
        ("6m0s", 360.0),
        ("1m30.5s", 90.5),
        ("2", 2.0),
        ("1h", MAX_SERVER_DELAY),
        ("1s1", None),
        ("s", None),
        ("-1s", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_duration(raw, expected):
    assert (
        parse_duration(raw) == pytest.approx(expected) if expected else parse_duration(raw) is None
    )


def test_parse_rate_hint():
    hint = parse_rate_hint(
        httpx.Headers(
            {
                "x-ratelimit-remaining-requests": "12",
                "x-ratelimit-reset-requests": "1m30.5s",
                "x-ratelimit-limit-requests": "x",
            }
        )
    )
    assert (hint.remaining, hint.reset, hint.limit) == (12, 90.5, None)


async def test_webhook_503_with_absurd_retry_after_keeps_retrying(tmp_path):
    from tests.test_webhook import SECRET_A, record

    def receiver(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"retry-after": "1e12"})

    clock = FakeClock(wall=time.time())
    store = Store(tmp_path / "s.db")
    record(store, clock, "run_1", ("s1", "completed"))
    settings = WebhookSettings.model_validate(
        {"url": "https://hooks.example.test/x", "secret": [SECRET_A], "max_age": 3600}
    )
    transport = httpx.MockTransport(receiver)
    sink = WebhookSink(settings, store, clock, transport=transport, jitter=lambda: 0.0)
    await sink.deliver_once()
    [item] = store.outbox(SINK)
    assert item.state == "pending"  # not dead-lettered at once
    assert item.next_attempt_at <= clock.wall() + MAX_SERVER_DELAY
    await sink.aclose()
    store.close()


async def test_a_restart_keeps_a_429_pause_that_has_not_run_out(tmp_path):
    clock = FakeClock(start=START)
    store = Store(tmp_path / "s.db")
    gate = RateGate(clock)
    keeper = PauseKeeper(gate, store)
    gate.refused(300.0, sent_at=START)
    await keeper.flush(AsyncStore(store))
    store.close()

    clock.t += 100.0  # the daemon restarts 100 s later (a new process: a new monotonic base)
    store = Store(tmp_path / "s.db")
    again = RateGate(clock)
    PauseKeeper(again, store)
    assert again.paused_until - clock.now() == pytest.approx(200.0, abs=0.01)
    assert again.reserve() == pytest.approx(200.0, abs=0.01)

    clock.t += 250.0  # a restart after the pause ran out does not pause
    later = RateGate(clock)
    PauseKeeper(later, store)
    assert later.reserve() == 0.0
    store.close()
