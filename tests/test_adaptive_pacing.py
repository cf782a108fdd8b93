"""The request pace adapts to the server: AIMD on 429, x-ratelimit-* headers, no fixed budget.

The behavioural tests run the real client against the simulator's token bucket over
ASGITransport, on virtual time: 40 runs that want more than the server allows.
"""

from __future__ import annotations

import contextlib

import anyio
import httpx
import pytest

from tests.fakes import FakeClock, VirtualClock
from watcher.api.client import ApiClient
from watcher.api.ratelimit import BETA, RateGate
from watcher.config.settings import ApiSettings, RetrySettings
from watcher.core.errors import ApiError
from watcher.core.rate_headers import RateHint
from watcher.simulator.app import ManualClock, create_app
from watcher.simulator.limiter import TokenBucket, format_duration
from watcher.simulator.scenario import generate_scenario
from watcher.sources.assistants import ASSISTANTS

pytestmark = pytest.mark.anyio


def test_no_budget_by_default():
    gate = RateGate(FakeClock(start=0.0))
    assert gate.rate is None
    assert [gate.reserve() for _ in range(100)] == [0.0] * 100


def test_a_429_cuts_the_rate_once_per_round_and_pauses():
    clock = FakeClock(start=10.0)
    gate = RateGate(clock)
    for _ in range(40):
        gate.reserve()  # 40 requests sent in the last second
    gate.refused(0.5, sent_at=9.9)
    assert gate.rate == pytest.approx(40 * BETA)
    assert gate.paused_until == pytest.approx(10.5)
    gate.refused(0.5, sent_at=9.95)  # in flight before the cut: the same congestion
    assert gate.rate == pytest.approx(40 * BETA)


def test_the_rate_climbs_back_while_it_holds_requests():
    clock = FakeClock(start=0.0)
    gate = RateGate(clock)
    for _ in range(40):
        gate.reserve()
    gate.refused(None, sent_at=0.0)
    cut = gate.rate
    assert cut is not None
    for _ in range(100):  # 10 s of answers, wanting 50 requests/s: the rate holds them back
        clock.t += 0.1
        for _ in range(5):
            gate.reserve()
        gate.answered()
    assert gate.rate is not None and gate.rate >= 40.0


def test_remaining_near_zero_eases_instead_of_growing():
    clock = FakeClock(start=0.0)
    gate = RateGate(clock, low_water=4)
    gate.rate = 30.0
    clock.t = 1.0
    gate.answered(RateHint(remaining=2, reset=0.1))
    assert gate.rate == pytest.approx(27.0)
    gate.answered(RateHint(remaining=2, reset=0.1))  # at most once per second
    assert gate.rate == pytest.approx(27.0)


@pytest.mark.parametrize(
    ("hint", "pause"),
    [
        (RateHint(remaining=0, reset=2.0, limit=20), 0.1),  # one request's worth
        (RateHint(remaining=0, reset=2.0), 2.0),  # the bucket's size unknown: all of it
        (RateHint(remaining=1, reset=2.0, limit=20), 0.0),
        (RateHint(remaining=0, reset=None), 0.0),
    ],
)
def test_an_empty_bucket_waits_for_its_reset(hint, pause):
    clock = FakeClock(start=0.0)
    gate = RateGate(clock)
    gate.answered(hint)
    assert gate.paused_until == pytest.approx(pause)


def test_a_new_ceiling_applies_at_once():
    gate = RateGate(FakeClock(start=0.0))
    gate.set_ceiling(5.0)
    assert (gate.ceiling, gate.rate) == (5.0, 5.0)
    gate.set_ceiling(None)
    assert gate.ceiling is None and gate.rate == 5.0  # learned from here on


def test_the_ceiling_is_kept():
    clock = FakeClock(start=0.0)
    gate = RateGate(clock, rate=5.0)
    for _ in range(50):
        clock.t += 0.01
        gate.reserve()
        gate.answered()
    assert gate.rate == 5.0


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.02, "20ms"), (1.5, "1.5s"), (360.0, "6m0s"), (90.5, "1m30.5s")]
)
def test_limiter_durations(seconds, text):
    assert format_duration(seconds) == text


class Storm:
    """An ASGI wrapper answering 429 (retry-after-ms 500) to everything between two times."""

    def __init__(self, app, clock: VirtualClock) -> None:
        self.app, self.clock = app, clock
        self.window = (-1.0, -1.0)
        self.refused = 0

    async def __call__(self, scope, receive, send):
        start, end = self.window
        if scope["type"] == "http" and start <= self.clock.now() < end:
            self.refused += 1
            headers = [(b"retry-after-ms", b"500"), (b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 429, "headers": headers})
            await send({"type": "http.response.body", "body": b'{"error": {"message": "x"}}'})
            return
        await self.app(scope, receive, send)


async def test_against_a_token_bucket_the_allowance_is_used_and_refusals_stay_low():
    clock = VirtualClock()
    bucket = TokenBucket(30.0, now=clock.now)
    scenario = generate_scenario(runs=40, seed=3, duration=10_000.0)
    app = Storm(create_app(scenario, clock=ManualClock(), rate_limit=bucket), clock)
    gate = RateGate(clock, low_water=8)
    client = ApiClient(
        ApiSettings(base_url="http://127.0.0.1:9/v1"),
        RetrySettings(attempts=3, initial_delay=0.5, max_delay=30.0),
        clock=clock,
        gate=gate,
        transport=httpx.ASGITransport(app),
        interval=0.5,
    )
    slots = anyio.CapacityLimiter(8)  # [poll] max_concurrency
    runs = [(t.id, r.id) for t in scenario.threads for r in t.runs]

    async def poll_forever(thread_id: str, run_id: str) -> None:
        while True:
            async with slots:
                with contextlib.suppress(ApiError):
                    segments = ("threads", thread_id, "runs", run_id)
                    await client.get(segments, headers=ASSISTANTS.headers)
            await clock.sleep(0.5)  # every run wants 2 requests/s: 80/s in all

    def counts() -> tuple[int, int]:
        return bucket.allowed, bucket.refused

    async with anyio.create_task_group() as tg:
        for thread_id, run_id in runs:
            tg.start_soon(poll_forever, thread_id, run_id)
        with anyio.fail_after(120):  # real seconds: a bound, not a measure
            await clock.run_until(60.0)
            allowed, refused = counts()
            # a minute at 30/s plus the bucket's first 30
            assert allowed >= 0.85 * (30 * 60 + 30)
            assert refused <= 0.05 * (allowed + refused)

            app.window = (60.0, 62.0)  # a 2 s storm of 429s from elsewhere (another client)
            await clock.run_until(72.0)
            before = counts()
            await clock.run_until(92.0)
            allowed, refused = (a - b for a, b in zip(counts(), before, strict=True))
            assert allowed >= 0.85 * 30 * 20  # recovered within 10 s of the storm's end
            assert refused <= 0.05 * (allowed + refused)
        tg.cancel_scope.cancel()


def failing_then_ok(*answers: tuple[int, dict[str, str]]):
    """A hostile API answering `answers` in turn (status, headers), then 200."""
    left = list(answers)

    async def app(scope, receive, send):
        status, headers = left.pop(0) if left else (200, {})
        raw = [(k.encode(), v.encode()) for k, v in headers.items()]
        raw.append((b"content-type", b"application/json"))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": b'{"id": "run_1"}'})

    return app


@pytest.mark.parametrize(
    ("answers", "first_wait"),
    [
        ([(500, {})], (0.0, 0.2)),  # one lost answer costs at most one interval
        ([(503, {"retry-after": "3"})], (3.0, 3.0)),  # or the server's Retry-After
        ([(429, {})], (0.5, 1.0)),  # overload: the backoff governs
    ],
)
async def test_one_transient_failure_retries_within_the_interval(answers, first_wait):
    clock = FakeClock(start=0.0)
    client = ApiClient(
        ApiSettings(base_url="http://127.0.0.1:9/v1"),
        RetrySettings(attempts=5, initial_delay=0.5, max_delay=30.0),
        clock=clock,
        gate=RateGate(clock),
        transport=httpx.ASGITransport(failing_then_ok(*answers)),
        interval=0.2,
    )
    await client.get(("threads", "thread_1", "runs", "run_1"))
    low, high = first_wait
    assert low <= clock.sleeps[0] <= high


async def test_repeated_failures_back_off_exponentially():
    clock = FakeClock(start=0.0)
    client = ApiClient(
        ApiSettings(base_url="http://127.0.0.1:9/v1"),
        RetrySettings(attempts=5, initial_delay=0.5, max_delay=30.0),
        clock=clock,
        gate=RateGate(clock),
        transport=httpx.ASGITransport(failing_then_ok(*[(500, {})] * 4)),
        interval=0.2,
    )
    await client.get(("threads", "thread_1", "runs", "run_1"))
    assert clock.sleeps[0] <= 0.2
    assert clock.sleeps[1] >= 1.0 and clock.sleeps[3] >= 4.0
