"""The composition root: watches → scheduler → client → pure core → store → sinks.

`Watcher.run()` runs inside a test as well as under the CLI; every side effect (HTTP
transport, clock, store, sinks) is passed in.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

import anyio
import structlog

from watcher.astore import AsyncStore
from watcher.cadence import next_delay
from watcher.client import ApiClient
from watcher.clock import Clock
from watcher.config import PollSettings, Settings, WatchSpec
from watcher.errors import ApiError, AuthError, NotFoundError, TransientError
from watcher.events import Event
from watcher.metrics import Metrics, event_label
from watcher.pacing import PaceMonitor
from watcher.reconcile import load_active, reconcile_config_watches
from watcher.reloadable import changed_keys, restart_needed
from watcher.scheduler import Scheduler
from watcher.sinks import LineSink
from watcher.sources import assistants
from watcher.store import Store
from watcher.transitions import ObjectState, Observed, detect
from watcher.urls import mask_url

__all__ = ["NO_API_MESSAGE", "Observer", "RunOutcome", "Watcher"]

log = structlog.get_logger("watcher.app")

#: /livez fails when the dispatcher has not turned for this long (it turns every second,
#: even while every poll waits on the API).
LIVENESS_WINDOW = 30.0

NO_API_MESSAGE = (
    "no Assistants API answers at {base_url}: every call so far answered 404. "
    "OpenAI retired the Assistants API on api.openai.com on 2026-08-26; "
    "point [api] base_url (or OPENAI_BASE_URL) at an Assistants-compatible server"
)

#: Sees every object of every poll, changed or not (the live view's latest state).
Observer = Callable[[Sequence[Observed]], None]


class OutboxSink(Protocol):
    """A sink delivering from the store's outbox on its own (the webhook)."""

    name: str

    def deadline(self) -> float: ...

    def wake(self) -> None: ...


@dataclass(slots=True)
class _RunState:
    thread_id: str
    run_id: str
    include: tuple[str, ...]
    cursor: str | None
    known: dict[str, ObjectState]
    delay: float
    last_change: float
    status: str | None = None
    last_poll: float | None = None  # unix time
    default_include: bool = False  # `include` is [poll] include's, which a reload may change
    polled_at: float | None = None  # monotonic, the last successful poll
    resume: str | None = None  # a listing cut at max_pages carries on from here
    paging_said: bool = False  # a cut listing is logged once per watch


@dataclass(slots=True)
class RunOutcome:
    """How a watched run ended, for `watch --exit-status`."""

    status: str | None = None
    error: str | None = None
    exit_code: int = 0


@dataclass(slots=True)
class _ThreadState:
    thread_id: str
    include: tuple[str, ...] | None
    started_at: float
    listed: bool
    delay: float
    seen: set[str] = field(default_factory=set)
    last_poll: float | None = None
    resume: str | None = None  # older runs still to list (a listing cut at max_pages)
    paging_said: bool = False


class Watcher:
    """Polls every watch on a scheduler; turns what changed into durable events."""

    def __init__(
        self,
        settings: Settings,
        *,
        client: ApiClient,
        store: Store | AsyncStore,
        clock: Clock,
        sinks: Sequence[LineSink] = (),
        observers: Sequence[Observer] = (),
        outboxes: Sequence[OutboxSink] = (),
        exit_when_done: bool = False,
        stop_on_error: bool = False,
        metrics: Metrics | None = None,
        pace: PaceMonitor | None = None,
    ) -> None:
        self.settings = settings
        self.pace = pace or PaceMonitor()
        self.metrics = metrics
        self.client = client
        self.store = AsyncStore.wrap(store)  # SQLite off the event loop
        self.clock = clock
        self.sinks = list(sinks)
        self.observers = list(observers)
        self.outboxes = list(outboxes)
        self.stop_on_error = stop_on_error
        self.scheduler = Scheduler(
            clock, concurrency=settings.poll.max_concurrency, exit_when_idle=exit_when_done
        )
        self.outcomes: dict[tuple[str, str], RunOutcome] = {}
        self.fatal: str | None = None
        self.stopped_by: int | None = None  # the signal that asked it to stop, if one did
        self.ready = False  # initialised; False again once stopping
        self.runs: dict[tuple[str, str], _RunState] = {}
        self.threads: dict[str, _ThreadState] = {}
        self._api_missing_said = False
        self._ready_callbacks: list[Callable[[], None]] = []

    # -- watches ------------------------------------------------------------------------

    async def add_configured_watches(self) -> None:
        """Make the store's config watches what the config's [[watch]] entries say.

        Watches the config no longer lists (removed while the daemon was stopped) are
        stopped and forgotten; watches added through the control API are kept.
        """
        specs, now = self.settings.watch, self.clock.wall()
        done = await self.store.run(partial(reconcile_config_watches, self.store.sync, specs, now))
        for thread_id, run_id in done.removed:
            log.info("watch removed: no longer in the config", thread_id=thread_id, run_id=run_id)

    async def start_watch(
        self,
        thread_id: str,
        run_id: str,
        include: Sequence[str] | None,
        cursor: str | None = None,
    ) -> None:
        if ("run", thread_id, run_id) in self.scheduler:
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
        state = _RunState(
            thread_id=thread_id,
            run_id=run_id,
            include=tuple(include if include is not None else self.settings.poll.include),
            cursor=cursor,
            known=known,
            delay=self.settings.poll.interval,
            last_change=self.clock.now(),
            default_include=include is None,
        )
        self.runs[(thread_id, run_id)] = state
        self.scheduler.schedule(
            key, lambda: self.poll_run(state), fallback=self.settings.poll.max_interval
        )

    async def start_thread_watch(
        self, thread_id: str, include: Sequence[str] | None, started_at: float, listed: bool
    ) -> None:
        if ("thread", thread_id) in self.scheduler:
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
        state = _ThreadState(
            thread_id=thread_id,
            include=tuple(include) if include is not None else None,
            started_at=started_at,
            listed=listed,
            delay=self.settings.poll.interval,
            seen=seen,
        )
        self.threads[thread_id] = state
        self.scheduler.schedule(
            key, lambda: self.poll_thread(state), fallback=self.settings.poll.max_interval
        )

    async def start_all(self) -> None:
        active = await self.store.run(partial(load_active, self.store.sync))  # one hand-off
        for w, known in active.runs:
            self._start_run(w.thread_id, w.run_id, w.include, w.cursor, known)
        for t, seen in active.threads:
            self._start_thread(t.thread_id, t.include, t.started_at, t.listed, seen)

    async def add_watch(
        self,
        thread_id: str,
        run_id: str | None,
        *,
        source: str = "api",
        include: Sequence[str] | None = None,
    ) -> bool:
        """Watch a run, or a thread's new runs; persisted. Return whether it is new."""
        if run_id:
            created = await self.store.add_run_watch(thread_id, run_id, source, include)
            if created:
                await self.start_watch(thread_id, run_id, include)
        else:
            created = await self.store.add_thread_watch(
                thread_id, source, self.clock.wall(), include
            )
            if created:
                await self.start_thread_watch(thread_id, include, self.clock.wall(), listed=False)
        if created:
            log.info("watch added", thread_id=thread_id, run_id=run_id, source=source)
        return created

    async def remove_watch(self, thread_id: str, run_id: str | None) -> bool:
        """Stop and forget a watch (a thread watch takes the runs it found along)."""
        if run_id:
            found = (thread_id, run_id) in {
                (w.thread_id, w.run_id) for w in await self.store.run_watches()
            }
            await self._drop_run(thread_id, run_id)
        else:
            found = thread_id in {t.thread_id for t in await self.store.thread_watches()}
            self.scheduler.cancel(("thread", thread_id))
            self.threads.pop(thread_id, None)
            await self.store.remove_thread_watch(thread_id)
            for w in await self.store.run_watches():
                if w.thread_id == thread_id and w.source in ("thread", "ignored"):
                    await self._drop_run(w.thread_id, w.run_id)
        if found:
            log.info("watch removed", thread_id=thread_id, run_id=run_id)
        return found

    async def _drop_run(self, thread_id: str, run_id: str) -> None:
        self.scheduler.cancel(("run", thread_id, run_id))
        self.runs.pop((thread_id, run_id), None)
        await self.store.remove_run_watch(thread_id, run_id)

    async def watches(
        self, *, finished: bool = False, after: tuple[str, str] | None = None, limit: int = 100
    ) -> tuple[list[dict[str, object]], tuple[str, str] | None]:
        """A page of watches (active ones, or all with `finished`), ordered by (thread_id,
        run_id), with what was last seen of each; and the key to ask the next page after."""
        rows = await self.store.watch_page(finished=finished, after=after, limit=limit)
        out: list[dict[str, object]] = []
        for thread_id, run_id, source, done in rows:
            seen = self.runs.get((thread_id, run_id)) if run_id else self.threads.get(thread_id)
            out.append(
                {
                    "thread_id": thread_id,
                    "run_id": run_id,
                    "source": source,
                    "active": not done,
                    "status": seen.status if isinstance(seen, _RunState) else None,
                    "last_poll": seen.last_poll if seen else None,
                }
            )
        more = len(rows) == limit
        return out, ((rows[-1][0], rows[-1][1] or "") if rows and more else None)

    async def reload(self, new: Settings) -> None:
        """Apply a new config: [[watch]] added and removed, every [poll] and [retry] key;
        state is kept. What needs a restart is named in one log line (`reloadable`)."""
        now = self.clock.wall()
        done = await self.store.run(
            partial(reconcile_config_watches, self.store.sync, new.watch, now)
        )
        for thread_id, run_id in done.removed:
            self.scheduler.cancel(("run", thread_id, run_id) if run_id else ("thread", thread_id))
            self.runs.pop((thread_id, run_id or ""), None)
            if not run_id:
                self.threads.pop(thread_id, None)
            log.info("watch removed", thread_id=thread_id, run_id=run_id)
        for thread_id, run_id in done.dropped_runs:
            self.scheduler.cancel(("run", thread_id, run_id))
            self.runs.pop((thread_id, run_id), None)
        for spec in done.added:
            if spec.run_id:
                await self.start_watch(spec.thread_id, spec.run_id, spec.include)
            else:
                await self.start_thread_watch(spec.thread_id, spec.include, now, listed=False)
            log.info("watch added", thread_id=spec.thread_id, run_id=spec.run_id, source="config")
        for spec in done.include_changed:
            await self._follow_include(spec, new.poll)
        applied = changed_keys(self.settings.poll, new.poll, "poll")
        applied += changed_keys(self.settings.retry, new.retry, "retry")
        self._apply_poll(new.poll)
        self.client.retry = new.retry
        restart = restart_needed(self.settings, new)
        if restart:
            log.warning(f"reload: these settings change at the next restart: {', '.join(restart)}")
        self.settings = new
        log.info(
            "config reloaded", added=len(done.added), removed=len(done.removed), applied=applied
        )

    async def _follow_include(self, spec: WatchSpec, poll: PollSettings) -> None:
        """A [[watch]] whose `include` changed: its next polls (and its runs') use the new one."""
        include = tuple(spec.include) if spec.include is not None else None
        runs = [spec.run_id] if spec.run_id else []
        if not spec.run_id and (thread := self.threads.get(spec.thread_id)) is not None:
            thread.include = include
            runs = [
                w.run_id
                for w in await self.store.run_watches(active_only=True)
                if w.thread_id == spec.thread_id and w.source == "thread"
            ]
        for run_id in runs:
            if (state := self.runs.get((spec.thread_id, run_id))) is not None:
                state.include = include if include is not None else tuple(poll.include)
                state.default_include = include is None

    def _apply_poll(self, poll: PollSettings) -> None:
        """[poll] in force from now: the cap, the budget ceiling, include, the cadence."""
        self.scheduler.set_concurrency(poll.max_concurrency)
        self.client.gate.set_ceiling(poll.max_requests_per_second)
        self.client.gate.low_water = max(2, poll.max_concurrency)
        self.client.interval = poll.interval
        for state in self.runs.values():
            if state.default_include:
                state.include = tuple(poll.include)
            state.delay = min(max(state.delay, poll.interval), poll.max_interval)
        self.scheduler.pull_in(poll.max_interval)

    def poll_in_force(self) -> dict[str, object]:
        """The [poll] settings the running daemon uses (after any reload)."""
        return {
            **self.settings.poll.model_dump(mode="json"),
            "max_concurrency": self.scheduler.concurrency,
        }

    def on_ready(self, callback: Callable[[], None]) -> None:
        self._ready_callbacks.append(callback)

    def health(self) -> dict[str, object]:
        """Alive: the dispatcher turns (it wakes every second, waiting on the API or not).

        What the polls wait on is shown beside it, and never makes the daemon "not alive":
        polls in flight, the oldest one's age, and what is left of a 429 pause.
        """
        now = self.clock.now()
        return {
            "ready": self.ready,
            "alive": now - self.scheduler.last_progress < LIVENESS_WINDOW,
            "last_progress_seconds_ago": round(now - self.scheduler.last_progress, 3),
            **self.waiting(),
        }

    def waiting(self) -> dict[str, float]:
        """What the polls wait on now: how many, the oldest's age, a 429 pause's rest."""
        now = self.clock.now()
        oldest = self.scheduler.oldest_in_flight()
        return {
            "polls_in_flight": self.scheduler.in_flight,
            "oldest_poll_in_flight_seconds": round(now - oldest, 3) if oldest is not None else 0.0,
            "api_paused_for_seconds": round(max(0.0, self.client.gate.paused_until - now), 3),
        }

    # -- one round ------------------------------------------------------------------------

    async def _emit(
        self, events: Sequence[Event], bodies: Sequence[str], seqs: Sequence[int]
    ) -> None:
        if not events:
            return
        for outbox in self.outboxes:
            outbox.wake()
        if self.metrics is not None:
            for ev in events:
                self.metrics.events.labels(type=event_label(ev.type)).inc()
        for sink in self.sinks:
            sink.write(bodies)
            await self.store.mark_delivered(sink.name, seqs)

    async def flush_pending(self) -> None:
        """Events recorded but not yet written (a crash in between): write them first."""
        for sink in self.sinks:
            while pending := await self.store.pending(sink.name):
                sink.write([p.body for p in pending])
                await self.store.mark_delivered(sink.name, [p.seq for p in pending])

    def _api_error(self, exc: ApiError) -> None:
        if isinstance(exc, NotFoundError) and exc.api_missing and not self._api_missing_said:
            self._api_missing_said = True
            log.error(NO_API_MESSAGE.format(base_url=mask_url(self.settings.api.base_url)))

    async def poll_run(self, state: _RunState) -> float | None:
        """One round for one run; the delay until the next, or None when its watch ends."""
        key = (state.thread_id, state.run_id)
        try:
            obs = await assistants.observe_run(
                self.client,
                state.thread_id,
                state.run_id,
                cursor=state.cursor,
                include=state.include,
                previous_status=state.status,
                resume=state.resume,
                max_pages=self.settings.poll.max_pages,
            )
        except TransientError as exc:
            log.warning(
                "poll failed; will retry at the next poll", run_id=state.run_id, error=str(exc)
            )
            return self.settings.poll.interval
        except AuthError as exc:
            self._api_error(exc)
            log.error(str(exc), run_id=state.run_id)
            if self.stop_on_error:
                self.outcomes[key] = RunOutcome(error=str(exc), exit_code=3)
                self.fatal = str(exc)
                self.scheduler.stop()
                return None
            return self.settings.retry.auth_backoff
        except NotFoundError as exc:
            self._api_error(exc)
            if exc.api_missing:
                message = NO_API_MESSAGE.format(base_url=mask_url(self.settings.api.base_url))
            else:
                message = f"run {state.run_id} of thread {state.thread_id} not found"
            log.error(f"{message}; watch dropped", run_id=state.run_id, detail=str(exc))
            self.outcomes[key] = RunOutcome(error=message, exit_code=4)
            await self.store.remove_run_watch(state.thread_id, state.run_id)
            self.runs.pop(key, None)
            return None
        except ApiError as exc:
            log.error(
                "the API refused the request; will retry later", run_id=state.run_id, error=str(exc)
            )
            return self.settings.poll.max_interval
        now = self.clock.now()
        state.last_poll = self.clock.wall()
        found = detect(state.known, obs.objects, now=int(state.last_poll))
        bodies: list[str] = []
        seqs: list[int] = []
        # an idle poll has nothing to record: no transaction (~5% of the CPU of a poll)
        if found.updates or obs.cursor != state.cursor or obs.done:
            bodies = [ev.to_json() for ev in found.events]  # encoded once, for store and sinks
            try:
                seqs = await self.store.record(
                    state.thread_id,
                    state.run_id,
                    found.events,
                    found.updates,
                    cursor=obs.cursor,
                    done=obs.done,
                    sinks=[s.name for s in self.sinks] + [o.name for o in self.outboxes],
                    deadlines={o.name: o.deadline() for o in self.outboxes},
                    bodies=bodies,
                )
            except sqlite3.Error as exc:
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
            # steps up to the new cursor are terminal and never listed again: forget them.
            # Steps after it are listed again (one may have finished ahead of a running
            # one): they stay known, or they would be reported a second time.
            state.cursor = obs.cursor
            for oid in _up_to(obs.objects, obs.cursor, skip=state.run_id):
                state.known.pop(oid, None)
        await self._emit(found.events, bodies, seqs)
        for observer in self.observers:
            observer(obs.objects)
        self._track_pace(state, now)
        changed = bool(found.events)
        if changed:
            state.last_change = now
        state.status = obs.run_status
        if obs.done:
            self.outcomes[key] = RunOutcome(
                status=obs.run_status,
                exit_code=0 if assistants.run_succeeded(obs.run_status) else 1,
            )
            log.info("run finished; watch ends", run_id=state.run_id, status=obs.run_status)
            self.runs.pop(key, None)
            return None
        state.delay = next_delay(
            state.delay,
            changed=changed,
            slow=obs.run_status in assistants.SLOW_STATUSES,
            idle_for=now - state.last_change,
            poll=self.settings.poll,
            poll_after=obs.poll_after,
        )
        return state.delay

    def _track_pace(self, state: _RunState, now: float) -> None:
        """The effective interval of active runs (a gauge), and one warning when the request
        rate or the concurrency cap stretches it past twice `interval` for a minute."""
        last, state.polled_at = state.polled_at, now
        poll = self.settings.poll
        if last is None or state.delay > poll.interval:
            return  # first poll, or a run backing off: not held back by us
        if self.pace.observe(now, intended=state.delay, actual=now - last):
            gate = self.client.gate
            if gate.rate is None:
                cause = f"the concurrency cap ([poll] max_concurrency = {poll.max_concurrency})"
            elif gate.ceiling is not None and gate.rate >= gate.ceiling:
                cause = f"the request budget ([poll] max_requests_per_second = {gate.ceiling:g})"
            else:
                cause = (
                    f"the API's rate limit (429s; pacing at {gate.rate:.1f} requests/s): "
                    "raise the organization's limit, or [poll] interval"
                )
            log.warning(
                f"active runs are polled every {self.pace.effective:.1f}s, not every "
                f"{poll.interval:g}s, for {self.pace.window:.0f}s: {cause} holds them back",
                effective_interval=round(self.pace.effective or 0.0, 3),
                interval=poll.interval,
                request_rate=None if gate.rate is None else round(gate.rate, 2),
                max_requests_per_second=poll.max_requests_per_second,
                max_concurrency=poll.max_concurrency,
            )
        if self.metrics is not None and self.pace.effective is not None:
            self.metrics.effective_interval.set(self.pace.effective)
            self.metrics.request_rate.set(self.client.gate.rate or 0.0)

    async def poll_thread(self, state: _ThreadState) -> float | None:
        try:
            found = await assistants.discover_runs(
                self.client,
                state.thread_id,
                seen=state.seen,
                first=not state.listed,
                started_at=state.started_at,
                resume=state.resume,
                max_pages=self.settings.poll.max_pages,
            )
        except TransientError as exc:
            log.warning(
                "listing runs failed; will retry", thread_id=state.thread_id, error=str(exc)
            )
            return self.settings.poll.interval
        except ApiError as exc:
            self._api_error(exc)
            log.error(
                "listing runs refused; will retry later", thread_id=state.thread_id, error=str(exc)
            )
            return (
                self.settings.retry.auth_backoff
                if isinstance(exc, AuthError)
                else (self.settings.poll.max_interval)
            )
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
        for run_id in found.new_runs:
            await self.store.add_run_watch(state.thread_id, run_id, "thread", state.include)
            await self.start_watch(state.thread_id, run_id, state.include)
            log.info("new run found", thread_id=state.thread_id, run_id=run_id)
        state.seen.update(found.ignored, found.new_runs)
        if not state.listed:
            await self.store.mark_thread_listed(state.thread_id)
            state.listed = True
        state.delay = next_delay(
            state.delay,
            changed=bool(found.new_runs),
            slow=True,
            idle_for=0.0,
            poll=self.settings.poll,
        )
        return state.delay

    # -- lifecycle ------------------------------------------------------------------------

    def stop(self) -> None:
        self.ready = False
        self.scheduler.stop()

    async def run(self) -> None:
        """Until stopped (or, for `watch`/`demo`, until every watch has ended)."""
        await self.flush_pending()
        await self.add_configured_watches()
        await self.start_all()
        self.ready = True
        for callback in self._ready_callbacks:
            callback()
        log.info(
            "watching",
            runs=len(self.runs),
            threads=len(self.threads),
        )
        await self.scheduler.run()
        await anyio.lowlevel.checkpoint()


def _up_to(objects: Sequence[Observed], cursor: str | None, *, skip: str) -> list[str]:
    """The ids of the steps listed up to and including `cursor` (none if it is absent)."""
    ids = [o.object_id for o in objects if o.object_id != skip]
    return ids[: ids.index(cursor) + 1] if cursor in ids else []
