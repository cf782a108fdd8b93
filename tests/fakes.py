"""Test doubles shared by the unit tests: a clock that records sleeps instead of sleeping."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Any

import anyio


class FakeClock:
    """Monotonic time that only moves when something sleeps on it."""

    def __init__(self, start: float = 1000.0, wall: float = 1_732_450_000.0) -> None:
        self.t = start
        self.wall_base = wall - start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def wall(self) -> float:
        return self.wall_base + self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


class VirtualClock:
    """Virtual time for many tasks at once: `sleep` parks the task; `run_until` jumps to the
    next wake-up whenever every task is blocked (no task is ever really waiting on time).
    Everything under test must block only on this clock and on in-process I/O."""

    def __init__(self, start: float = 0.0, wall: float = 1_732_450_000.0) -> None:
        self.t = start
        self.wall_base = wall - start
        self._heap: list[tuple[float, int, Any]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self.t

    def wall(self) -> float:
        return self.wall_base + self.t

    async def sleep(self, seconds: float) -> None:
        if not seconds > 0:
            await anyio.lowlevel.checkpoint()
            return
        wake = anyio.Event()
        heapq.heappush(self._heap, (self.t + seconds, next(self._seq), wake))
        await wake.wait()

    async def run_until(self, until: float) -> None:
        """Advance time to `until`, waking sleepers in order as the other tasks block."""
        while True:
            await _all_blocked()
            if not self._heap or self._heap[0][0] > until:
                self.t = until
                return
            at, _, wake = heapq.heappop(self._heap)
            self.t = max(self.t, at)
            wake.set()


async def _all_blocked() -> None:
    """Yield until every other task waits on something (asyncio only; anyio's own
    `wait_all_tasks_blocked` polls every 0.1 s of real time, too slow for virtual time)."""
    this = asyncio.current_task()
    while True:
        await anyio.lowlevel.checkpoint()
        if all(
            task is this
            or task.done()
            or (task._fut_waiter is not None and not task._fut_waiter.done())  # type: ignore[attr-defined]
            for task in asyncio.all_tasks()
        ):
            return
