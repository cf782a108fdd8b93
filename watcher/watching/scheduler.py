"""A scheduler instead of a task per run: jobs ordered by due time, a concurrency cap.

A job is an async callable returning the delay until its next run, or None when finished.
The dispatcher never waits on a job: with every slot taken (each poll waiting on a slow
API, a Retry-After or a 429 pause) it still turns every TICK, sees `stop`, and `progress`
moves. `progress` says the daemon's own loop is alive, not that the API answers.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass

import anyio
import structlog

from watcher.core.clock import Clock
from watcher.state.store_protocol import StoreError

__all__ = ["Job", "Scheduler"]

log = structlog.get_logger("watcher.scheduler")

Job = Callable[[], Awaitable[float | None]]
#: The dispatcher wakes at least this often, so `progress` shows it is alive.
TICK = 1.0
#: After `stop`, how long polls in flight may finish before they are cancelled. What they
#: had not recorded is polled again at the next start, so nothing is lost.
GRACE = 2.0


@dataclass(slots=True, eq=False)  # identity: an entry is a borrower of the limiter
class _Entry:
    job: Job
    seq: int
    due: float
    fallback: float  # delay after a job crashed (a bug): it is logged and retried later


class Scheduler:
    def __init__(
        self,
        clock: Clock,
        *,
        concurrency: int,
        exit_when_idle: bool = False,
        tick: float = TICK,
    ) -> None:
        self.clock = clock
        self.exit_when_idle = exit_when_idle
        self.tick = tick
        self._limiter = anyio.CapacityLimiter(concurrency)
        self._heap: list[tuple[float, int, Hashable]] = []
        self._entries: dict[Hashable, _Entry] = {}
        self._seq = itertools.count()
        self._wake = anyio.Event()
        self._running = 0
        self._started: dict[_Entry, float] = {}  # jobs in flight → when they started
        self._stopping = False
        self.progress = 0  # dispatcher loop turns: moves at least every tick while alive
        self.last_progress = clock.now()
        self.lag = 0.0  # how late the last job started against its due time

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def schedule(
        self, key: Hashable, job: Job, *, delay: float = 0.0, fallback: float = 30.0
    ) -> None:
        """Add or replace the job under `key`, due after `delay` seconds."""
        entry = _Entry(job, next(self._seq), self.clock.now() + delay, fallback)
        self._entries[key] = entry
        heapq.heappush(self._heap, (entry.due, entry.seq, key))
        self._wake.set()

    @property
    def concurrency(self) -> int:
        return int(self._limiter.total_tokens)

    def set_concurrency(self, jobs: int) -> None:
        """A new cap on jobs in flight (a reload); jobs already running finish."""
        self._limiter.total_tokens = jobs
        self._wake.set()

    def pull_in(self, within: float) -> None:
        """Jobs due later than `within` seconds from now become due then (a reload that
        lowered `max_interval`). Jobs in flight are not touched: they reschedule themselves."""
        latest = self.clock.now() + within
        for key, entry in list(self._entries.items()):
            if entry.due > latest:
                self.schedule(key, entry.job, delay=within, fallback=entry.fallback)

    def cancel(self, key: Hashable) -> None:
        """Forget `key`; a run of it in flight finishes but is not rescheduled."""
        if self._entries.pop(key, None) is not None:
            self._wake.set()

    @property
    def in_flight(self) -> int:
        """Jobs running now (each may be waiting on the API)."""
        return self._running

    def oldest_in_flight(self) -> float | None:
        """When the longest-running job in flight started (clock time), if any."""
        return min(self._started.values(), default=None)

    def stop(self) -> None:
        """Start no new job; `run` returns once jobs in flight end (or the grace runs out)."""
        self._stopping = True
        self._wake.set()

    async def _wait(self, seconds: float | None) -> None:
        with anyio.move_on_after(seconds):
            await self._wake.wait()
        self._wake = anyio.Event()

    async def _run_job(self, key: Hashable, entry: _Entry) -> None:
        try:
            try:
                delay = await entry.job()
            except StoreError as exc:  # the file busy or failing: no bug, the poll is retried
                log.error("cannot write the state file; will retry", key=str(key), error=str(exc))
                delay = entry.fallback
            except Exception:
                log.exception("bug: a poll crashed; it will be retried", key=str(key))
                delay = entry.fallback
            if self._entries.get(key) is entry:
                if delay is None:
                    del self._entries[key]
                else:
                    self.schedule(key, entry.job, delay=delay, fallback=entry.fallback)
        finally:
            self._running -= 1
            self._started.pop(entry, None)
            self._limiter.release_on_behalf_of(entry)
            self._wake.set()

    async def run(self, *, grace: float = GRACE) -> None:
        """Dispatch due jobs until stopped (or, with `exit_when_idle`, until none is left).

        Once stopped, jobs in flight get `grace` seconds, then are cancelled.
        """
        async with anyio.create_task_group() as tg:
            while not self._stopping:
                self.progress += 1
                self.last_progress = self.clock.now()
                if not self._heap:
                    if self.exit_when_idle and self._running == 0:
                        break
                    await self._wait(self.tick)
                    continue
                due, seq, key = self._heap[0]
                delay = due - self.clock.now()
                if delay > 0:
                    await self._wait(min(delay, self.tick))
                    continue
                if self._limiter.available_tokens < 1:
                    # every slot is taken: wake when one frees (or at the tick), never
                    # block on the limiter, so a hung API cannot stall this loop
                    await self._wait(self.tick)
                    continue
                heapq.heappop(self._heap)
                entry = self._entries.get(key)
                if entry is None or entry.seq != seq:
                    continue  # cancelled or rescheduled since
                self._limiter.acquire_on_behalf_of_nowait(entry)
                now = self.clock.now()
                self.lag = max(0.0, now - due)
                self._running += 1
                self._started[entry] = now
                tg.start_soon(self._run_job, key, entry, name=f"poll {key}")
            with anyio.move_on_after(grace):
                while self._running:
                    await self._wait(None)
            if self._running:
                log.info(
                    "polls still waiting on the API are cancelled; they run again at the next"
                    " start",
                    count=self._running,
                )
            tg.cancel_scope.cancel()
