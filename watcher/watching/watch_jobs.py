"""The watches on the scheduler: a job for each active watch, that runs the poller's round.

A watch starts from what the store kept (its cursor and the statuses seen, or the objects
a discovery watch has listed), all at start, or those whose lease this replica has just
taken (replicas); a watch is stopped here when its lease goes to another replica, and
stays in the store. The `WatchTable` holds each running watch's state.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import anyio

from watcher.api.client import ApiClient
from watcher.config.settings import Settings
from watcher.core.clock import Clock
from watcher.core.transitions import ObjectState
from watcher.sources.catalog import source_of
from watcher.state.astore import AsyncStore
from watcher.state.reconcile import load_active
from watcher.state.store_records import WatchKey
from watcher.watching.leases import LeaseKeeper
from watcher.watching.poller import Poller
from watcher.watching.scheduler import Scheduler
from watcher.watching.watch_state import RunState, ThreadState, WatchTable

__all__ = ["STARTING", "WatchJobs"]

#: Watches taken over read their statuses this many at a time (a takeover of hundreds
#: is polled within a tick, not after hundreds of round trips in a row).
STARTING = 4


class WatchJobs:
    """Starts and stops the scheduler's job of each watch."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: AsyncStore,
        clock: Clock,
        scheduler: Scheduler,
        table: WatchTable,
        client: ApiClient,
        poller: Poller,
        leases: LeaseKeeper | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.scheduler = scheduler
        self.table = table
        self.client = client
        self.poller = poller
        self.leases = leases  # replicas: only the watches whose lease this one holds

    async def _ours(self, key: WatchKey) -> bool:
        return self.leases is None or await self.leases.claim(key)

    async def start_watch(
        self,
        thread_id: str,
        run_id: str,
        include: Sequence[str] | None,
        cursor: str | None = None,
    ) -> None:
        if ("run", thread_id, run_id) in self.scheduler or not await self._ours(
            (thread_id, run_id)
        ):
            return
        known = await self.store.known_states(thread_id, run_id)
        self._start_run(thread_id, run_id, include, cursor, known)

    def _start_run(
        self,
        thread_id: str,
        run_id: str,
        include: Sequence[str] | None,
        cursor: str | None,
        known: dict[str, ObjectState],
    ) -> None:
        key = ("run", thread_id, run_id)
        if key in self.scheduler:  # started meanwhile
            return
        state = RunState(
            thread_id=thread_id,
            run_id=run_id,
            include=tuple(include if include is not None else self.settings.poll.include),
            cursor=cursor,
            known=known,
            delay=self.settings.poll.interval,
            last_change=self.clock.now(),
            default_include=include is None,
            source=source_of(thread_id),
        )
        self.table.runs[(thread_id, run_id)] = state
        self.scheduler.schedule(
            key, lambda: self.poller.poll_run(state), fallback=self.settings.poll.max_interval
        )

    async def start_thread_watch(
        self, thread_id: str, include: Sequence[str] | None, started_at: float, listed: bool
    ) -> None:
        if ("thread", thread_id) in self.scheduler or not await self._ours((thread_id, None)):
            return
        seen = await self.store.runs_of_thread(thread_id)
        self._start_thread(thread_id, include, started_at, listed, seen)

    def _start_thread(
        self,
        thread_id: str,
        include: Sequence[str] | None,
        started_at: float,
        listed: bool,
        seen: set[str],
    ) -> None:
        key = ("thread", thread_id)
        if key in self.scheduler:  # started meanwhile
            return
        state = ThreadState(
            thread_id=thread_id,
            include=tuple(include) if include is not None else None,
            started_at=started_at,
            listed=listed,
            delay=self.settings.poll.interval,
            seen=seen,
            source=source_of(thread_id),
        )
        self.table.threads[thread_id] = state
        self.scheduler.schedule(
            key, lambda: self.poller.poll_thread(state), fallback=self.settings.poll.max_interval
        )

    async def start_all(self) -> None:
        if self.leases is not None:  # only what this replica holds
            await self.start_held(sorted(self.leases.held, key=lambda k: (k[0], k[1] or "")))
            return
        active = await self.store.run(partial(load_active, self.store.sync))  # one hand-off
        for w, known in active.runs:
            self._start_run(w.thread_id, w.run_id, w.include, w.cursor, known)
        for t, seen in active.threads:
            self._start_thread(t.thread_id, t.include, t.started_at, t.listed, seen)

    async def start_held(self, keys: Sequence[WatchKey]) -> None:
        """Start watches whose lease was just taken, from the stored cursor and statuses."""
        runs = {(w.thread_id, w.run_id): w for w in await self.store.run_watches(active_only=True)}
        threads = {t.thread_id: t for t in await self.store.thread_watches()}
        limiter = anyio.CapacityLimiter(STARTING)

        async def start(thread_id: str, run_id: str | None) -> None:
            async with limiter:  # each started as soon as its statuses are read
                if run_id and (w := runs.get((thread_id, run_id))) is not None:
                    known = await self.store.known_states(thread_id, run_id)
                    self._start_run(thread_id, run_id, w.include, w.cursor, known)
                elif not run_id and (t := threads.get(thread_id)) is not None:
                    seen = await self.store.runs_of_thread(thread_id)
                    self._start_thread(thread_id, t.include, t.started_at, t.listed, seen)

        async with anyio.create_task_group() as tg:
            for thread_id, run_id in keys:
                tg.start_soon(start, thread_id, run_id)

    def stop(self, key: WatchKey) -> bool:
        """Stop polling a watch here (its lease went to another replica); it stays in the
        store. Whether it was running."""
        thread_id, run_id = key
        job = ("run", thread_id, run_id) if run_id else ("thread", thread_id)
        running = job in self.scheduler
        self.scheduler.cancel(job)
        if run_id:
            self.table.runs.pop((thread_id, run_id), None)
        else:
            self.table.threads.pop(thread_id, None)
        return running
