"""The watcher: its parts put together — registry, poller, recorder, health — on one scheduler.

`Watcher.run()` runs inside a test as well as under the CLI; every side effect (HTTP
transport, clock, store, sinks, the scheduler) is passed in. Others use the watcher's
public methods only; each part offers what the others need.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import anyio
import structlog

from watcher.api.client import ApiClient
from watcher.config.reloadable import changed_keys, restart_needed
from watcher.config.settings import Settings
from watcher.core.clock import Clock
from watcher.core.pacing import PaceMonitor
from watcher.delivery.recorder import OutboxSink, Recorder
from watcher.delivery.sinks import LineSink
from watcher.service.metrics import Metrics
from watcher.state.astore import AsyncStore
from watcher.state.store import Store
from watcher.watching.config_watches import add_configured_watches, reconcile
from watcher.watching.health import LIVENESS_WINDOW, Health
from watcher.watching.leases import LeaseKeeper
from watcher.watching.poller import Observer, Poller
from watcher.watching.registry import Registry
from watcher.watching.scheduler import Scheduler
from watcher.watching.watch_state import RunOutcome, WatchTable

__all__ = [
    "LIVENESS_WINDOW",
    "Observer",
    "OutboxSink",
    "RunOutcome",
    "Watcher",
]

log = structlog.get_logger("watcher.app")


class Watcher:
    """Polls every watch on a scheduler; turns what changed into durable events."""

    def __init__(
        self,
        settings: Settings,
        *,
        client: ApiClient,
        store: Store | AsyncStore,
        clock: Clock,
        scheduler: Scheduler | None = None,
        sinks: Sequence[LineSink] = (),
        observers: Sequence[Observer] = (),
        outboxes: Sequence[OutboxSink] = (),
        exit_when_done: bool = False,
        stop_on_error: bool = False,
        metrics: Metrics | None = None,
        pace: PaceMonitor | None = None,
        replica: str | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.clock = clock
        self.observers = list(observers)  # an observer added here sees the next polls
        astore = AsyncStore.wrap(store)  # SQLite off the event loop
        if scheduler is None:  # (not `or`: an empty scheduler is falsy, it has a length)
            scheduler = Scheduler(
                clock, concurrency=settings.poll.max_concurrency, exit_when_idle=exit_when_done
            )
        self._scheduler = scheduler
        self._table = WatchTable()
        self._health = Health(clock, self._scheduler, client.gate)
        self.recorder = Recorder(astore, sinks=sinks, outboxes=outboxes, metrics=metrics)
        self.poller = Poller(
            settings,
            client=client,
            store=astore,
            clock=clock,
            table=self._table,
            recorder=self.recorder,
            health=self._health,
            scheduler=self._scheduler,
            start_run=lambda t, r, inc: self.registry.start_watch(t, r, inc),
            observers=self.observers,
            metrics=metrics,
            pace=pace,
            stop_on_error=stop_on_error,
        )
        # replicas on one database (PostgreSQL): each polls the watches it holds the lease
        # of; one process on its state file (SQLite), or a one-off `watch`, polls them all
        self.leases = (
            LeaseKeeper(
                astore.lease_store,
                clock=clock,
                lease=settings.state.lease,
                interval=settings.poll.interval,
                replica=replica,
                metrics=metrics,
            )
            if astore.lease_store is not None and not exit_when_done
            else None
        )
        self.registry = Registry(
            settings,
            store=astore,
            clock=clock,
            scheduler=self._scheduler,
            table=self._table,
            client=client,
            poller=self.poller,
            leases=self.leases,
        )
        self.stopped_by: int | None = None  # the signal that asked it to stop, if one did
        self._ready_callbacks: list[Callable[[], None]] = []
        # the control API's calls, as the registry answers them
        self.add_watch = self.registry.add_watch
        self.remove_watch = self.registry.remove_watch
        self.watches = self.registry.watches
        self.at_capacity = self.registry.at_capacity

    # -- what the others read ---------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Initialised; False again once stopping."""
        return self._health.ready

    @property
    def outcomes(self) -> dict[tuple[str, str], RunOutcome]:
        """How each watched run ended, by (thread id, run id)."""
        return self._health.outcomes

    @property
    def fatal(self) -> str | None:
        return self._health.fatal

    def health(self) -> dict[str, object]:
        return self._health.health()

    def waiting(self) -> dict[str, float]:
        return self._health.waiting()

    def lag(self) -> float:
        return self._health.lag()

    def progress(self) -> int:
        """Turns of the dispatcher loop (the systemd watchdog's sign of life)."""
        return self._scheduler.progress

    def counts(self) -> dict[str, int]:
        """Active watches by shape: {"runs": …, "threads": …}."""
        return self._table.counts()

    def last_poll(self) -> float | None:
        """When a run was last polled (unix time), if one was."""
        return self._table.last_poll()

    def poll_in_force(self) -> dict[str, object]:
        """The [poll] settings the running daemon uses (after any reload)."""
        return {
            **self.settings.poll.model_dump(mode="json"),
            "max_concurrency": self._scheduler.concurrency,
        }

    def replica(self) -> dict[str, object] | None:
        """This replica and its leases (`/status`); None when it is the only process."""
        return self.leases.status() if self.leases is not None else None

    # -- reload and lifecycle -----------------------------------------------------------

    async def reload(self, new: Settings) -> None:
        """Apply a new config: [[watch]] added and removed, every [poll] and [retry] key;
        state is kept. What needs a restart is named in one log line (`reloadable`)."""
        done = await reconcile(self.registry, new)
        applied = changed_keys(self.settings.poll, new.poll, "poll")
        applied += changed_keys(self.settings.retry, new.retry, "retry")
        self.registry.apply_poll(new.poll)
        self.client.retry = new.retry
        restart = restart_needed(self.settings, new)
        if restart:
            log.warning(f"reload: these settings change at the next restart: {', '.join(restart)}")
        self.settings = self.registry.settings = self.poller.settings = new
        log.info(
            "config reloaded", added=len(done.added), removed=len(done.removed), applied=applied
        )

    async def poll_once(self, thread_id: str, run_id: str | None = None) -> float | None:
        """One round of an active watch now, beside the scheduler (a test driving its own
        clock); the delay until the next, or None when the watch ends."""
        if run_id:
            return await self.poller.poll_run(self._table.runs[(thread_id, run_id)])
        return await self.poller.poll_thread(self._table.threads[thread_id])

    def on_ready(self, callback: Callable[[], None]) -> None:
        self._ready_callbacks.append(callback)

    def stop(self) -> None:
        self._health.ready = False
        self._scheduler.stop()

    async def lease_step(self) -> None:
        """One turn of the lease keeper now (a test driving its own clock): renew, take
        what is free and start it, stop what was lost."""
        if self.leases is not None:
            await self.leases.step(self.registry.start_held, self.registry.stop)

    async def run(self) -> None:
        """Until stopped (or, for `watch`/`demo`, until every watch has ended)."""
        keeper = self.leases
        replica = {"replica": keeper.replica} if keeper is not None else {}
        with structlog.contextvars.bound_contextvars(**replica):
            await self.recorder.flush_pending()
            await add_configured_watches(self.registry)
            if keeper is not None:
                await keeper.tick()  # what is free now is this replica's
            await self.registry.start_all()
            self._health.ready = True
            for callback in self._ready_callbacks:
                callback()
            log.info("watching", **self.counts())
            if keeper is None:
                await self._scheduler.run()
            else:
                async with anyio.create_task_group() as tg:
                    start, stop = self.registry.start_held, self.registry.stop
                    tg.start_soon(keeper.run, start, stop, name="watch leases")
                    await self._scheduler.run()
                    tg.cancel_scope.cancel()
                await keeper.release()  # a clean stop: the others take over at once
        await anyio.lowlevel.checkpoint()
