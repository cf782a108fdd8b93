"""How long a webhook outage costs once the receiver is back.

    python bench/outbox_outage.py

The webhook sink's own loop (`WebhookSink.run`, default schedule and concurrency) delivers
to a real receiver on 127.0.0.1 that checks every signature with `standardwebhooks`.

- down 5 s and down 10 s, real time: 26 events of 6 runs are recorded over the first 5 s
  of the outage (one every ~0.2 s, as polls would find them); the receiver comes back on
  the same port; measured: the seconds from its return until all 26 are delivered (given
  up after 30 s).
- down 1 h, injected clock: the clock runs 1 h behind and catches up in 30 s jumps (about
  0.2 s of real time each) while the receiver is down, so every schedule step and probe of
  an hour happens; 1,000 events of 100 runs wait; the receiver (5 ms per answer) comes back;
  measured: the seconds until all 1,000 are delivered, and the most requests it had at once.

Bounded: under 2 minutes. Run it on an older checkout (PYTHONPATH=that/checkout) for the
baseline.
"""

from __future__ import annotations

import base64
import logging
import sys
import tempfile
import time
from pathlib import Path

import anyio
import structlog

sys.path.append(str(Path(__file__).resolve().parent.parent))  # tests.receiver

from tests.receiver import Receiver
from watcher.config.settings import WebhookSettings
from watcher.core.events import Event
from watcher.delivery.webhook import SINK, WebhookSink
from watcher.state.store import Store

SECRET = "whsec_" + base64.b64encode(b"b" * 32).decode()
GIVE_UP = {False: 30.0, True: 60.0}  # short outages, the hour


class SkewedClock:
    """The real clock, `skew` seconds off; the bench moves `skew` to jump through time."""

    def __init__(self, skew: float) -> None:
        self.skew = skew

    def now(self) -> float:
        return anyio.current_time() + self.skew

    def wall(self) -> float:
        return time.time() + self.skew

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


def add_event(store: Store, clock: SkewedClock, run: int, n: int) -> str:
    run_id = f"run_{run}"
    event = Event(
        id=f"evt_{run:04d}_{n:05d}",
        type="thread.run.step.completed",
        created_at=int(clock.wall()),
        data={"id": f"step_{run}_{n}", "object": "thread.run.step", "status": "completed"},
        previous_status="in_progress",
        thread_id="thread_b",
        run_id=run_id,
    )
    store.record(
        "thread_b", run_id, [event], {}, cursor=None, done=False, sinks=[SINK],
        deadlines={SINK: clock.wall() + 259200},
    )  # fmt: skip
    return event.id


async def scenario(tmp: Path, *, down_for: float, hour: bool = False) -> str:
    clock = SkewedClock(-3600.0 if hour else 0.0)
    store = Store(tmp / f"outage-{down_for}.db")
    receiver = Receiver([SECRET])
    receiver.delay = 0.005 if hour else 0.0
    settings = WebhookSettings.model_validate({"url": receiver.url, "secret": [SECRET]})
    sink = WebhookSink(settings, store, clock)
    runs, events = (100, 1000) if hour else (6, 26)
    delivered = lambda: len({e["id"] for e in receiver.events()})  # noqa: E731
    async with anyio.create_task_group() as tg:
        tg.start_soon(sink.run)
        receiver.down()
        for n in range(events):
            add_event(store, clock, n % runs, n)
            sink.wake()
            if not hour:
                await anyio.sleep(5.0 / events)
        if not hour:
            await anyio.sleep(down_for - 5.0)
        if hour:
            while clock.skew < 0:
                clock.skew = min(0.0, clock.skew + 30)
                sink.wake()
                await anyio.sleep(0.2)
        receiver.start()
        back = time.monotonic()
        with anyio.move_on_after(GIVE_UP[hour]):
            while delivered() < events:
                await anyio.sleep(0.05)
        took = time.monotonic() - back
        tg.cancel_scope.cancel()
    await sink.aclose()
    receiver.close()
    got = delivered()
    what = "down 1 h (injected clock)" if hour else f"down {down_for:.0f} s"
    if got < events:
        late = f"{events - got} still undelivered {GIVE_UP[hour]:.0f} s after its return"
        return f"| {what} | {events} | {late} |"
    pace = f"; at most {receiver.max_in_flight} requests at once" if hour else ""
    return f"| {what} | {events} | all delivered {took:.1f} s after its return{pace} |"


async def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    print("| receiver | events | result |\n|---|---:|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for down_for in (5.0, 10.0):
            print(await scenario(Path(tmp), down_for=down_for), flush=True)
        print(await scenario(Path(tmp), down_for=3600, hour=True), flush=True)


if __name__ == "__main__":
    anyio.run(main)
