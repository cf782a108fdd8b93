"""The poller: one round of one watch, through its source, into the pure core and out.

`poll_run` asks the watch's source what the object (and its children) look like now,
`detect` says what changed, the recorder stores and emits it; the return value is the
delay until the next round (None: the watch ends). `poll_thread` discovers new objects and
hands them to the registry (`start_run`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import structlog

from watcher.api.client import ApiClient
from watcher.config.settings import Settings
from watcher.core.cadence import next_delay
from watcher.core.clock import Clock
from watcher.core.errors import ApiError
from watcher.core.pacing import PaceMonitor
from watcher.core.transitions import Observed, detect
from watcher.delivery.recorder import Recorder
from watcher.service.metrics import Metrics
from watcher.state.astore import AsyncStore
from watcher.state.store_protocol import StoreError
from watcher.watching.health import Health
from watcher.watching.pace_report import track_pace
from watcher.watching.poll_failures import PollFailures
from watcher.watching.scheduler import Scheduler
from watcher.watching.watch_state import RunOutcome, RunState, ThreadState, WatchTable

__all__ = ["Observer", "Poller"]

log = structlog.get_logger("watcher.app")  # the logger's name is kept

#: Sees every object of every poll, changed or not (the live view's latest state).
Observer = Callable[[Sequence[Observed]], None]
#: Starts watching a run a discovery watch found: (thread id, run id, include).
StartRun = Callable[[str, str, Sequence[str] | None], Awaitable[None]]


class Poller:
    def __init__(
        self,
        settings: Settings,
        *,
        client: ApiClient,
        store: AsyncStore,
        clock: Clock,
        table: WatchTable,
        recorder: Recorder,
        health: Health,
        scheduler: Scheduler,
        start_run: StartRun,
        observers: list[Observer],
        metrics: Metrics | None = None,
        pace: PaceMonitor | None = None,
        stop_on_error: bool = False,
    ) -> None:
        self.settings = settings  # the registry's reload sets the new one
        self.client = client
        self.store = store
        self.clock = clock
        self.table = table
        self.recorder = recorder
        self.health = health
        self.scheduler = scheduler
        self.start_run = start_run
        self.observers = observers  # shared: an observer added later sees the next polls
        self.metrics = metrics
        self.pace = pace or PaceMonitor()
        self.failures = PollFailures(
            store=store,
            table=table,
            health=health,
            scheduler=scheduler,
            metrics=metrics,
            stop_on_error=stop_on_error,
        )

    async def poll_run(self, state: RunState) -> float | None:
        """One round for one run; the delay until the next, or None when its watch ends."""
        key = state.key
        try:
            obs = await state.source.observe(
                self.client,
                state.path,
                cursor=state.cursor,
                include=state.include,
                previous_status=state.status,
                resume=state.resume,
                max_pages=self.settings.poll.max_pages,
            )
        except ApiError as exc:
            return await self.failures.poll_failed(state, exc, self.settings)
        now = self.clock.now()
        state.last_poll = self.clock.wall()
        found = detect(state.known, obs.objects, now=int(state.last_poll))
        failure: Exception | None = None
        # an idle poll has nothing to record: no transaction (~5% of the CPU of a poll)
        if found.updates or obs.cursor != state.cursor or obs.done:
            try:
                failure = await self.recorder.record(
                    state.thread_id, state.run_id, found, cursor=obs.cursor, done=obs.done
                )
            except StoreError as exc:
                # nothing was recorded, so nothing is emitted: the next poll detects it again
                log.error(
                    "cannot write the state file; will retry",
                    path=self.store.path,
                    error=str(exc),
                    run_id=state.run_id,
                )
                return self.settings.poll.max_interval
        state.known.update(found.updates)
        state.resume = obs.resume
        if obs.problem and not state.paging_said:
            state.paging_said = True
            log.warning(
                "listing the run's steps stopped early; the next poll carries on",
                run_id=state.run_id,
                reason=obs.problem,
            )
        if obs.cursor != state.cursor:
            # children up to the new cursor are terminal and never listed again: forget
            # them. Those after it are listed again (one may have finished ahead of a
            # running one): they stay known, or they would be reported a second time.
            state.cursor = obs.cursor
            for oid in _up_to(obs.objects, obs.cursor, skip=state.run_id):
                state.known.pop(oid, None)
        if failure is not None:  # recorded, so taken as reported above; the poll fails
            raise failure
        for observer in self.observers:
            observer(obs.objects)
        track_pace(
            self.pace,
            state,
            now,
            poll=self.settings.poll,
            gate=self.client.gate,
            metrics=self.metrics,
        )
        changed = bool(found.events)
        if changed:
            state.last_change = now
        state.status = obs.status
        root = state.source.kinds[state.source.root]
        if obs.done:
            self.health.outcomes[key] = RunOutcome(
                status=obs.status, exit_code=0 if root.succeeded(obs.status) else 1
            )
            log.info("run finished; watch ends", run_id=state.run_id, status=obs.status)
            self.table.runs.pop(key, None)
            return None
        state.delay = next_delay(
            state.delay,
            changed=changed,
            slow=obs.status in root.slow,
            idle_for=now - state.last_change,
            poll=self.settings.poll,
            poll_after=obs.poll_after,
        )
        return state.delay

    async def poll_thread(self, state: ThreadState) -> float | None:
        """One listing of a discovery watch; the runs it found start their own watches."""
        try:
            found = await state.source.discover(
                self.client,
                state.thread_id,
                seen=state.seen,
                first=not state.listed,
                started_at=state.started_at,
                resume=state.resume,
                max_pages=self.settings.poll.max_pages,
            )
        except ApiError as exc:
            return self.failures.listing_failed(state, exc, self.settings)
        state.last_poll = self.clock.wall()
        state.resume = found.resume
        if found.problem and not state.paging_said:
            state.paging_said = True
            log.warning(
                "listing the thread's runs stopped early; the next poll carries on",
                thread_id=state.thread_id,
                reason=found.problem,
            )
        if found.ignored:
            await self.store.mark_runs_ignored(state.thread_id, found.ignored)
        for run_id in found.new:
            await self.store.add_run_watch(state.thread_id, run_id, "thread", state.include)
            await self.start_run(state.thread_id, run_id, state.include)
            log.info("new run found", thread_id=state.thread_id, run_id=run_id)
        state.seen.update(found.ignored, found.new)
        if not state.listed:
            await self.store.mark_thread_listed(state.thread_id)
            state.listed = True
        state.delay = next_delay(
            state.delay,
            changed=bool(found.new),
            slow=True,
            idle_for=0.0,
            poll=self.settings.poll,
        )
        return state.delay


def _up_to(objects: Sequence[Observed], cursor: str | None, *, skip: str) -> list[str]:
    """The ids of the children listed up to and including `cursor` (none if it is absent)."""
    ids = [o.object_id for o in objects if o.object_id != skip]
    return ids[: ids.index(cursor) + 1] if cursor in ids else []
