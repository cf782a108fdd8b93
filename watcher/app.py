"""The composition root: watches → scheduler → client → pure core → store → sinks.

`Watcher.run()` runs inside a test as well as under the CLI; every side effect (HTTP
transport, clock, store, sinks) is passed in.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import anyio
import structlog

from watcher import assistants
from watcher.cadence import next_delay
from watcher.client import ApiClient
from watcher.clock import Clock
from watcher.config import Settings
from watcher.errors import ApiError, AuthError, NotFoundError, TransientError
from watcher.events import Event
from watcher.metrics import Metrics, event_label
from watcher.scheduler import Scheduler
from watcher.sinks import LineSink
from watcher.store import Store
from watcher.transitions import ObjectState, Observed, detect

__all__ = ["NO_API_MESSAGE", "Observer", "RunOutcome", "Watcher"]

log = structlog.get_logger("watcher.app")

#: /livez fails when the dispatcher has not turned for this long (it turns every second).
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
        store: Store,
        clock: Clock,
        sinks: Sequence[LineSink] = (),
        observers: Sequence[Observer] = (),
        outboxes: Sequence[OutboxSink] = (),
        exit_when_done: bool = False,
        stop_on_error: bool = False,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.client = client
        self.store = store
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
        self.ready = False  # initialised; False again once stopping
        self.runs: dict[tuple[str, str], _RunState] = {}
        self.threads: dict[str, _ThreadState] = {}
        self._api_missing_said = False
        self._ready_callbacks: list[Callable[[], None]] = []

    # -- watches ------------------------------------------------------------------------

    def add_configured_watches(self) -> None:
        """Put the config's [[watch]] entries into the store (new ones only)."""
        now = self.clock.wall()
        for spec in self.settings.watch:
            if spec.run_id:
                self.store.add_run_watch(spec.thread_id, spec.run_id, "config", spec.include)
            else:
                self.store.add_thread_watch(spec.thread_id, "config", now, spec.include)

    def start_watch(
        self,
        thread_id: str,
        run_id: str,
        include: Sequence[str] | None,
        cursor: str | None = None,
    ) -> None:
        key = ("run", thread_id, run_id)
        if key in self.scheduler:
            return
        state = _RunState(
            thread_id=thread_id,
            run_id=run_id,
            include=tuple(include if include is not None else self.settings.poll.include),
            cursor=cursor,
            known=self.store.known_states(thread_id, run_id),
            delay=self.settings.poll.interval,
            last_change=self.clock.now(),
        )
        self.runs[(thread_id, run_id)] = state
        self.scheduler.schedule(
            key, lambda: self.poll_run(state), fallback=self.settings.poll.max_interval
        )

    def start_thread_watch(
        self, thread_id: str, include: Sequence[str] | None, started_at: float, listed: bool
    ) -> None:
        key = ("thread", thread_id)
        if key in self.scheduler:
            return
        state = _ThreadState(
            thread_id=thread_id,
            include=tuple(include) if include is not None else None,
            started_at=started_at,
            listed=listed,
            delay=self.settings.poll.interval,
            seen=self.store.runs_of_thread(thread_id),
        )
        self.threads[thread_id] = state
        self.scheduler.schedule(
            key, lambda: self.poll_thread(state), fallback=self.settings.poll.max_interval
        )

    def start_all(self) -> None:
        for w in self.store.run_watches(active_only=True):
            self.start_watch(w.thread_id, w.run_id, w.include, w.cursor)
        for t in self.store.thread_watches():
            self.start_thread_watch(t.thread_id, t.include, t.started_at, t.listed)

    def add_watch(
        self,
        thread_id: str,
        run_id: str | None,
        *,
        source: str = "api",
        include: Sequence[str] | None = None,
    ) -> bool:
        """Watch a run, or a thread's new runs; persisted. Return whether it is new."""
        if run_id:
            created = self.store.add_run_watch(thread_id, run_id, source, include)
            if created:
                self.start_watch(thread_id, run_id, include)
        else:
            created = self.store.add_thread_watch(thread_id, source, self.clock.wall(), include)
            if created:
                self.start_thread_watch(thread_id, include, self.clock.wall(), listed=False)
        if created:
            log.info("watch added", thread_id=thread_id, run_id=run_id, source=source)
        return created

    def remove_watch(self, thread_id: str, run_id: str | None) -> bool:
        """Stop and forget a watch (a thread watch takes the runs it found along)."""
        if run_id:
            found = (thread_id, run_id) in {
                (w.thread_id, w.run_id) for w in self.store.run_watches()
            }
            self._drop_run(thread_id, run_id)
        else:
            found = thread_id in {t.thread_id for t in self.store.thread_watches()}
            self.scheduler.cancel(("thread", thread_id))
            self.threads.pop(thread_id, None)
            self.store.remove_thread_watch(thread_id)
            for w in self.store.run_watches():
                if w.thread_id == thread_id and w.source in ("thread", "ignored"):
                    self._drop_run(w.thread_id, w.run_id)
        if found:
            log.info("watch removed", thread_id=thread_id, run_id=run_id)
        return found

    def _drop_run(self, thread_id: str, run_id: str) -> None:
        self.scheduler.cancel(("run", thread_id, run_id))
        self.runs.pop((thread_id, run_id), None)
        self.store.remove_run_watch(thread_id, run_id)

    def watches(self) -> list[dict[str, object]]:
        """Every watch, with what was last seen of it."""
        out: list[dict[str, object]] = []
        for t in self.store.thread_watches():
            ts = self.threads.get(t.thread_id)
            out.append(
                {
                    "thread_id": t.thread_id,
                    "run_id": None,
                    "source": t.source,
                    "active": True,
                    "status": None,
                    "last_poll": ts.last_poll if ts else None,
                }
            )
        for w in self.store.run_watches():
            if w.source == "ignored":
                continue
            rs = self.runs.get((w.thread_id, w.run_id))
            out.append(
                {
                    "thread_id": w.thread_id,
                    "run_id": w.run_id,
                    "source": w.source,
                    "active": not w.done,
                    "status": rs.status if rs else None,
                    "last_poll": rs.last_poll if rs else None,
                }
            )
        return out

    def reload(self, new: Settings) -> None:
        """Apply a new config: [[watch]] added and removed, [poll] cadence; state is kept.

        Other sections (api, retry, state, webhook, http) take effect at the next restart.
        """
        old = {(w.thread_id, w.run_id) for w in self.settings.watch}
        want = {(w.thread_id, w.run_id) for w in new.watch}
        for thread_id, run_id in old - want:
            self.remove_watch(thread_id, run_id)
        for spec in new.watch:
            if (spec.thread_id, spec.run_id) not in old:
                self.add_watch(spec.thread_id, spec.run_id, source="config", include=spec.include)
        unapplied = [
            name
            for name in ("api", "retry", "state", "webhook", "stdout", "log")
            if getattr(new, name) != getattr(self.settings, name)
        ]
        if unapplied:
            log.warning("reload: these sections change at the next restart", sections=unapplied)
        self.settings = new
        log.info("config reloaded", added=len(want - old), removed=len(old - want))

    def on_ready(self, callback: Callable[[], None]) -> None:
        self._ready_callbacks.append(callback)

    def health(self) -> dict[str, object]:
        now = self.clock.now()
        return {
            "ready": self.ready,
            "alive": now - self.scheduler.last_progress < LIVENESS_WINDOW,
            "last_progress_seconds_ago": round(now - self.scheduler.last_progress, 3),
        }

    # -- one round ------------------------------------------------------------------------

    def _emit(self, events: Sequence[Event], bodies: Sequence[str], seqs: Sequence[int]) -> None:
        if not events:
            return
        for outbox in self.outboxes:
            outbox.wake()
        if self.metrics is not None:
            for ev in events:
                self.metrics.events.labels(type=event_label(ev.type)).inc()
        for sink in self.sinks:
            sink.write(bodies)
            self.store.mark_delivered(sink.name, seqs)

    def flush_pending(self) -> None:
        """Events recorded but not yet written (a crash in between): write them first."""
        for sink in self.sinks:
            while pending := self.store.pending(sink.name):
                sink.write([p.body for p in pending])
                self.store.mark_delivered(sink.name, [p.seq for p in pending])

    def _api_error(self, exc: ApiError) -> None:
        if isinstance(exc, NotFoundError) and exc.api_missing and not self._api_missing_said:
            self._api_missing_said = True
            log.error(NO_API_MESSAGE.format(base_url=self.settings.api.base_url))

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
                message = NO_API_MESSAGE.format(base_url=self.settings.api.base_url)
            else:
                message = f"run {state.run_id} of thread {state.thread_id} not found"
            log.error(f"{message}; watch dropped", run_id=state.run_id, detail=str(exc))
            self.outcomes[key] = RunOutcome(error=message, exit_code=4)
            self.store.remove_run_watch(state.thread_id, state.run_id)
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
                seqs = self.store.record(
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
            # steps behind the cursor are terminal and never listed again: forget them
            behind = {o.object_id for o in obs.objects if o.object_id != state.run_id}
            state.cursor = obs.cursor
            for oid in behind:
                st = state.known.get(oid)
                if st is not None and assistants.is_terminal(assistants.STEP, st.status):
                    state.known.pop(oid, None)
        self._emit(found.events, bodies, seqs)
        for observer in self.observers:
            observer(obs.objects)
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
            self.store.mark_runs_ignored(state.thread_id, found.ignored)
        for run_id in found.new_runs:
            self.store.add_run_watch(state.thread_id, run_id, "thread", state.include)
            self.start_watch(state.thread_id, run_id, state.include)
            log.info("new run found", thread_id=state.thread_id, run_id=run_id)
        state.seen.update(found.ignored, found.new_runs)
        if not state.listed:
            self.store.mark_thread_listed(state.thread_id)
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
        self.flush_pending()
        self.add_configured_watches()
        self.start_all()
        self.ready = True
        for callback in self._ready_callbacks:
            callback()
        log.info(
            "watching",
            runs=len(self.store.run_watches(active_only=True)),
            threads=len(self.store.thread_watches()),
        )
        await self.scheduler.run()
        await anyio.lowlevel.checkpoint()
