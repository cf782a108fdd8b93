"""Webhook delivery from the durable outbox: signed (Standard Webhooks), ordered per run.

The retry schedule lives in the store, not in memory: a delivery that is retried for hours
survives restarts, which an in-process retry loop (tenacity's) cannot.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
from collections.abc import Callable, Sequence

import anyio
import anyio.abc
import httpx
import structlog

from watcher import __version__
from watcher.api.bodies import read_some
from watcher.api.client import parse_retry_after
from watcher.config.settings import WebhookSettings
from watcher.core.clock import Clock
from watcher.core.webhook_health import EndpointHealth
from watcher.core.webhook_openai import formatter, sends
from watcher.service.metrics import Metrics
from watcher.state.astore import AsyncStore
from watcher.state.store import OutboxItem, Store

__all__ = ["WebhookSink", "next_attempt_delay", "secret_key", "sign"]

log = structlog.get_logger("watcher.webhook")

SINK = "webhook"
#: Another process (`outbox replay`) may add due work: look at the store at least this often.
IDLE_RECHECK = 5.0
DEPTH_LOG_EVERY = 10.0
#: Heads made due per dispatch turn when the endpoint is back (each turn stays short).
RELEASE_BATCH = 100
#: Heads not sent in the configured format that one dispatch turn can skip at most.
SKIP_BATCH = 100
#: Of a receiver's reply, only this much is read (its status is what counts).
REPLY_BYTES = 4096


def secret_key(whsec: str) -> bytes:
    """The HMAC key: the base64-decoded part of a `whsec_…` secret."""
    return base64.b64decode(whsec.removeprefix("whsec_"))


def sign(keys: Sequence[bytes], msg_id: str, timestamp: int, body: str) -> str:
    """`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, one per key, space-separated."""
    payload = f"{msg_id}.{timestamp}.{body}".encode()
    return " ".join(
        "v1," + base64.b64encode(hmac.new(k, payload, hashlib.sha256).digest()).decode()
        for k in keys
    )


def next_attempt_delay(
    attempts: int, schedule: Sequence[float], *, retry_after: float | None, jitter: float
) -> float:
    """Delay before attempt number `attempts + 1` (attempts made so far ≥ 1).

    The schedule's entry for that attempt (its last entry once past its end), stretched by
    up to 10% of jitter (`jitter` in [0, 1)), and never less than the receiver's Retry-After.
    """
    base = schedule[min(attempts, len(schedule) - 1)]
    delay = base * (1.0 + 0.1 * jitter)
    return max(delay, retry_after or 0.0)


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
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.store = AsyncStore.wrap(store)  # SQLite off the event loop
        self.clock = clock
        self.jitter = jitter
        self._keys = [secret_key(s.get_secret_value()) for s in settings.secret]
        self._format = formatter(settings.format)
        self._http = httpx.AsyncClient(
            timeout=settings.timeout, follow_redirects=False, transport=transport, verify=True
        )
        self._wake = anyio.Event()
        self._slots = anyio.CapacityLimiter(settings.max_concurrency)
        self._in_flight: set[tuple[str, str]] = set()
        self.health = EndpointHealth.at_start(clock.now())
        self._last_depth: dict[str, int] | None = None
        self._last_depth_log = float("-inf")
        self.delivered = 0
        self.failed = 0
        self.dead = 0
        self.skipped = 0

    def deadline(self) -> float:
        return self.clock.wall() + self.settings.max_age

    def wake(self) -> None:
        self._wake.set()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _post(self, item: OutboxItem, body: str) -> tuple[bool, bool, str, float | None]:
        """(delivered, permanent failure, error, retry_after). Signed anew for each attempt."""
        timestamp = int(self.clock.wall())
        headers = {
            **self.settings.headers,
            "content-type": "application/json",
            "user-agent": f"runstep-watcher/{__version__}",
            "webhook-id": item.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self._keys, item.event_id, timestamp, body),
        }
        try:
            # `timeout` bounds the whole exchange (httpx's is per read: a receiver trickling
            # its reply would hold a delivery slot for ever); of the reply, only a glance
            with anyio.fail_after(self.settings.timeout):
                async with self._http.stream(
                    "POST", self.settings.url, content=body.encode(), headers=headers
                ) as response:
                    await read_some(response, REPLY_BYTES)
        except (TimeoutError, httpx.TimeoutException):
            return False, False, f"timed out after {self.settings.timeout}s", None
        except httpx.TransportError as exc:
            return False, False, f"connection error: {type(exc).__name__}", None
        status = response.status_code
        if 200 <= status < 300:
            return True, False, "", None
        error = f"HTTP {status}"
        if 300 <= status < 400:
            return False, False, f"{error} (redirects are not followed)", None
        if 400 <= status < 500 and status not in (408, 409, 429):
            return False, True, f"{error}: the endpoint refused the event", None
        return False, False, error, parse_retry_after(response.headers)

    async def _attempt(self, item: OutboxItem, *, probe: bool = False) -> None:
        """One delivery attempt; a probe's failure leaves the event's schedule as it was."""
        body = self._format(item.type, item.body)
        if body is None:  # not sent in this format (normally skipped before it gets here)
            await self._skip([item])
            return
        ok, permanent, error, retry_after = await self._post(item, body)
        if ok:
            await self.store.mark_delivered(SINK, [item.seq])
            self.delivered += 1
            self._count("delivered")
            self.health.answered(self.clock.now())
            return
        self.failed += 1
        self._count("failed")
        if not permanent:
            self.health.failed(self.clock.now(), retry_after)
        if probe and not permanent:
            await self.store.note_failure(SINK, item.seq, error=error)
            log.info(
                "webhook endpoint still failing",
                event_id=item.event_id,
                error=error,
                next_probe_in=round(self.health.next_probe - self.clock.now(), 3),
            )
            return
        now = self.clock.wall()
        attempts = item.attempts + 1
        jitter = self.jitter()
        delay = next_attempt_delay(
            attempts, self.settings.schedule, retry_after=retry_after, jitter=jitter
        )
        deadline = (
            item.deadline if item.deadline is not None else item.created_at + self.settings.max_age
        )
        ours = next_attempt_delay(attempts, self.settings.schedule, retry_after=None, jitter=jitter)
        if now + ours <= deadline < now + delay:
            delay = deadline - now  # only the receiver's Retry-After goes past: a last try then
        if permanent or now + delay > deadline:
            why = error if permanent else f"{error}; past max_age ({self.settings.max_age:.0f}s)"
            await self.store.mark_dead(SINK, item.seq, error=why)
            self.dead += 1
            self._count("dead")
            log.error(
                "webhook delivery dead-lettered",
                event_id=item.event_id,
                error=why,
                attempts=attempts,
            )
            return
        await self.store.reschedule(SINK, item.seq, at=now + delay, error=error)
        log.warning(
            "webhook delivery failed; will retry",
            event_id=item.event_id,
            error=error,
            attempt=attempts,
            delay=round(delay, 3),
        )

    async def _skip(self, items: Sequence[OutboxItem]) -> int:
        """Events `format` does not send: done without a POST, so none waits in the outbox."""
        if items:
            await self.store.mark_delivered(SINK, [i.seq for i in items])
            self.skipped += len(items)
            log.debug(
                "webhook events not sent in this format",
                format=self.settings.format,
                event_ids=[i.event_id for i in items],
            )
            if self.metrics is not None:
                self.metrics.webhook_deliveries.labels(result="skipped").inc(len(items))
        return len(items)

    def _count(self, result: str) -> None:
        if self.metrics is not None:
            self.metrics.webhook_deliveries.labels(result=result).inc()

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
        skipping = self.settings.format != "runstep-watcher"  # some types are not sent at all
        if not free and not skipping:
            return 0
        started = 0
        limit = free + len(self._in_flight) + (SKIP_BATCH if skipping else 0)
        heads = await self.store.due_heads(SINK, self.clock.wall(), limit=limit)
        unsent = [h for h in heads if not sends(self.settings.format, h.type)]
        skipped = await self._skip(unsent)  # their runs' next events are due at the next turn
        unsent_seqs = {h.seq for h in unsent}
        for item in heads:
            if started < free and item.seq not in unsent_seqs and self._start(tg, item):
                started += 1
        if skipped:
            return started + skipped
        if not started and not self._in_flight and self.health.probe_due(self.clock.now()):
            probe = await self.store.oldest_head(SINK)
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
            await self._attempt(item, probe=probe)
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
