"""The scheduler in-process on the real event loop: jobs that never end (a hung API) take
every slot, yet the dispatcher turns, the watchdog is fed, and `stop` ends it all."""

from __future__ import annotations

import anyio
import pytest

from watcher.core.clock import AnyioClock
from watcher.service.notify import watchdog_loop
from watcher.watching.scheduler import Scheduler

pytestmark = pytest.mark.anyio

TICK = 0.02


class Pings:
    """A notifier that counts WATCHDOG=1."""

    watchdog_interval = TICK

    def __init__(self) -> None:
        self.count = 0

    def watchdog(self) -> None:
        self.count += 1


async def test_every_slot_hung_the_dispatcher_turns_and_stop_cancels_them():
    scheduler = Scheduler(AnyioClock(), concurrency=2, tick=TICK)
    slots_taken = anyio.Event()
    started: list[int] = []
    cancelled: list[int] = []

    def hang(i: int):
        async def job() -> float | None:
            started.append(i)
            if len(started) == 2:
                slots_taken.set()
            try:
                await anyio.sleep_forever()  # an answer that never comes
            finally:
                cancelled.append(i)
            return None

        return job

    for i in range(4):
        scheduler.schedule(i, hang(i))
    pings = Pings()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: scheduler.run(grace=0.1))
            await slots_taken.wait()
            # 50 turns of the watchdog (1 s), far past its stale window of 3 ticks + 1
            await watchdog_loop(
                pings,
                progress=lambda: scheduler.progress,
                sleep=anyio.sleep,
                now=anyio.current_time,
                stale_after=4 * TICK,
                iterations=50,
            )
            assert pings.count == 50
            assert sorted(started) == [0, 1] and scheduler.in_flight == 2
            scheduler.stop()
    assert sorted(cancelled) == [0, 1]
    assert scheduler.in_flight == 0 and scheduler.oldest_in_flight() is None
