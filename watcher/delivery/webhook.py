"""Webhook delivery from the durable outbox: signed (Standard Webhooks), ordered per run.

The retry schedule lives in the store, not in memory: a delivery that is retried for hours
survives restarts, which an in-process retry loop (tenacity's) cannot. Replicas sharing the
outbox claim the heads they deliver (`claim_due_heads`): each event is posted by one at a
time, each run's in order. The POST is `webhook_post`'s, a failure's record
`webhook_outcome`'s, the schedule `webhook_retry`'s, one attempt and its count
`webhook_attempt`'s.
"""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Callable

import anyio
import anyio.abc
import httpx
import structlog

from watcher.config.settings import WebhookSettings
from watcher.core.clock import Clock
from watcher.core.webhook_health import EndpointHealth
from watcher.delivery.webhook_attempt import Attempts
from watcher.delivery.webhook_post import Poster
from watcher.delivery.webhook_retry import next_attempt_delay
from watcher.delivery.webhook_signing import secret_key, sign
from watcher.service.metrics import Metrics
from watcher.state.astore import AsyncStore
from watcher.state.store import OutboxItem, Store, StoreError

__all__ = ["WebhookSink", "default_owner", "next_attempt_delay", "secret_key", "sign"]

log = structlog.get_logger("watcher.webhook")

SINK = "webhook"
#: Another process (`outbox replay`) may add due work: look at the store at least this often.
IDLE_RECHECK = 5.0
DEPTH_LOG_EVERY = 10.0
#: Heads made due per dispatch turn when the endpoint is back (each turn stays short).
RELEASE_BATCH = 100
#: Heads not sent in the configured format that one dispatch turn can skip at most.
SKIP_BATCH = 100
#: A head taken for delivery stays this replica's for the webhook timeout and this much
#: more (the store's writes around the POST); only then may another replica take it over
#: (this one died mid-delivery), so no event is ever posted by two replicas at once.
CLAIM_MARGIN = 30.0
#: At a stop, how long giving the claims back may take (the daemon's closing is bounded).
UNCLAIM_SECONDS = 0.5


def default_owner() -> str:
    """Who claims deliveries when no replica id is given: this host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


class WebhookSink:
    """Drains the store's webhook outbox; wakes when new events are recorded."""

    name = SINK

    def __init__(
        self,
        settings: WebhookSettings,
        store: Store | AsyncStore,
        clock: Clock,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        jitter: Callable[[], float] = random.random,
        metrics: Metrics | None = None,
        owner: str | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.store = AsyncStore.wrap(store)  # SQLite off the event loop
        self.clock = clock
        self.jitter = jitter
        self.owner = owner or default_owner()  # replicas sharing the outbox: who claims
        self.hold = settings.timeout + CLAIM_MARGIN
        self._poster = Poster(settings, clock, transport)
        self._wake = anyio.Event()
        self._slots = anyio.CapacityLimiter(settings.max_concurrency)
        self._in_flight: set[tuple[str, str]] = set()
        self.health = EndpointHealth.at_start(clock.now())
        self.attempts = Attempts(
            SINK,
            settings,
            self.store,
            clock,
            self._poster,
            self.health,
            jitter=jitter,
            metrics=metrics,
        )
        self._last_depth: dict[str, int] | None = None
        self._last_depth_log = float("-inf")

    @property
    def delivered(self) -> int:
        return self.attempts.delivered

    @property
    def failed(self) -> int:
        return self.attempts.failed

    @property
    def dead(self) -> int:
        return self.attempts.dead

    @property
    def skipped(self) -> int:
        return self.attempts.skipped

    def deadline(self) -> float:
        return self.clock.wall() + self.settings.max_age

    def wake(self) -> None:
        self._wake.set()

    async def aclose(self) -> None:
        """After `run` ends: the claims of deliveries cut short go back to the other
        replicas at once (else each waits out its `hold`), then the HTTP client closes."""
        with anyio.move_on_after(UNCLAIM_SECONDS):  # a stop is short, a database may hang
            try:
                await self.store.unclaim(SINK, self.owner)
            except StoreError as exc:
                log.warning("webhook claims not given back; they expire", error=str(exc))
        await self._poster.aclose()

    async def _start_due(self, tg: anyio.abc.TaskGroup) -> int:
        """Start the due head event of each run not in flight, while slots are free (and
        skip those `format` does not send); how many were started or skipped.

        Once the endpoint answers again, every pending delivery is due at once; while it
        fails, the oldest pending event goes out as a probe when one is due.
        """
        if self.health.take_release(self.clock.now()):
            released = await self.store.release(SINK, self.clock.wall(), limit=RELEASE_BATCH)
            if released == RELEASE_BATCH:  # a long backlog: the next batch at the next turn
                self.health.release_more(self.clock.now())
            if released:
                log.info("webhook endpoint answers again; deliveries due now", due=released)
        free = int(self._slots.available_tokens)
        skipped = started = 0
        if self.settings.format != "runstep-watcher":  # some types are not sent at all
            # skipped without a claim: no POST, only a mark (the same by whoever makes it)
            heads = await self.store.due_heads(SINK, self.clock.wall(), limit=SKIP_BATCH)
            skipped = await self.attempts.skip([h for h in heads if not self.attempts.sends(h)])
        if free:
            # each head taken is this sink's until delivered, rescheduled or dead (or until
            # `hold`, if this replica dies): other replicas do not see it as due meanwhile
            heads = await self.store.claim_due_heads(
                SINK, self.owner, self.clock.wall(), hold=self.hold, limit=free
            )
            skipped += await self.attempts.skip([h for h in heads if not self.attempts.sends(h)])
            sent = [h for h in heads if self.attempts.sends(h)]
            idle = [h.seq for h in sent if not self._start(tg, h)]
            started += len(sent) - len(idle)
            if idle:  # a run's next event, claimed as its previous one ends: due again now
                await self.store.unclaim(SINK, self.owner, idle)
        if skipped:  # their runs' next events are due at the next turn
            return started + skipped
        if not started and not self._in_flight and self.health.probe_due(self.clock.now()):
            probe = await self.store.claim_oldest_head(
                SINK, self.owner, self.clock.wall(), hold=self.hold
            )
            if probe is not None and self._start(tg, probe, probe=True):
                self.health.probing(self.clock.now())
                started += 1
        return started

    def _start(self, tg: anyio.abc.TaskGroup, item: OutboxItem, *, probe: bool = False) -> bool:
        key = (item.thread_id, item.run_id)
        if key in self._in_flight:
            return False
        self._in_flight.add(key)
        self._slots.acquire_on_behalf_of_nowait(item)
        tg.start_soon(self._attempt_in_slot, item, key, probe, name=f"webhook {item.event_id}")
        return True

    async def _attempt_in_slot(self, item: OutboxItem, key: tuple[str, str], probe: bool) -> None:
        try:
            await self.attempts.attempt(item, probe=probe)
        finally:
            self._in_flight.discard(key)
            self._slots.release_on_behalf_of(item)
            self._wake.set()

    async def deliver_once(self) -> int:
        """One round (a test knob): attempt (or skip) each run's due head event, wait for
        them all; how many were attempted or skipped."""
        async with anyio.create_task_group() as tg:
            started = await self._start_due(tg)
        await self._log_depth()
        return started

    async def _log_depth(self) -> None:
        """Log the queue depth when it changes, at most every DEPTH_LOG_EVERY seconds."""
        now = self.clock.now()
        depth = await self.store.queue_depth(SINK)
        changed = depth != self._last_depth and (depth["pending"] or self._last_depth)
        if changed and (now - self._last_depth_log >= DEPTH_LOG_EVERY or not depth["pending"]):
            log.info("webhook queue depth", **depth)
            self._last_depth_log = now
            self._last_depth = depth

    async def run(self) -> None:
        """Forever: keep up to `max_concurrency` deliveries in flight, one per run at most.

        A slow or failing delivery holds back its own run only: the others go on around it.
        """
        async with anyio.create_task_group() as tg:
            while True:
                started = await self._start_due(tg)
                await self._log_depth()
                if started:
                    continue
                due = await self.store.next_due(SINK)
                wait = IDLE_RECHECK if due is None else due - self.clock.wall()
                wait = min(wait, self.health.wake_at() - self.clock.now())
                if wait <= 0:  # what is due is in flight, or no slot is free: a finish wakes us
                    wait = IDLE_RECHECK
                with anyio.move_on_after(min(wait, IDLE_RECHECK)):
                    await self._wake.wait()
                self._wake = anyio.Event()
