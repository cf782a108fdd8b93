"""One webhook delivery attempt and what it leaves: the event delivered, rescheduled or
dead (`webhook_outcome`), or skipped when the configured format does not send it; each
counted, and the endpoint's health told of every answer."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import structlog

from watcher.config.settings import WebhookSettings
from watcher.core.clock import Clock
from watcher.core.webhook_health import EndpointHealth
from watcher.core.webhook_openai import formatter, sends
from watcher.delivery.webhook_outcome import record_failure
from watcher.delivery.webhook_post import Poster
from watcher.service.metrics import Metrics
from watcher.state.store_protocol import StateStore
from watcher.state.store_records import OutboxItem

__all__ = ["Attempts"]

log = structlog.get_logger("watcher.webhook")


class Attempts:
    """Attempts one sink's deliveries and counts them (delivered, failed, dead, skipped)."""

    def __init__(
        self,
        sink: str,
        settings: WebhookSettings,
        store: StateStore,
        clock: Clock,
        poster: Poster,
        health: EndpointHealth,
        *,
        jitter: Callable[[], float],
        metrics: Metrics | None,
    ) -> None:
        self.sink = sink
        self.settings = settings
        self.store = store
        self.clock = clock
        self.poster = poster
        self.health = health
        self.jitter = jitter
        self.metrics = metrics
        self._format = formatter(settings.format)
        self.delivered = 0
        self.failed = 0
        self.dead = 0
        self.skipped = 0

    def sends(self, item: OutboxItem) -> bool:
        """Whether the configured format sends this event's type at all."""
        return sends(self.settings.format, item.type)

    async def attempt(self, item: OutboxItem, *, probe: bool = False) -> None:
        """One delivery attempt; a probe's failure leaves the event's schedule as it was."""
        body = self._format(item.type, item.body)
        if body is None:  # not sent in this format (normally skipped before it gets here)
            await self.skip([item])
            return
        ok, permanent, error, retry_after = await self.poster.post(item, body)
        if ok:
            await self.store.mark_delivered(self.sink, [item.seq])
            self.delivered += 1
            self._count("delivered")
            self.health.answered(self.clock.now())
            return
        self.failed += 1
        self._count("failed")
        if not permanent:
            self.health.failed(self.clock.now(), retry_after)
        if probe and not permanent:
            await self.store.note_failure(self.sink, item.seq, error=error)
            log.info(
                "webhook endpoint still failing",
                event_id=item.event_id,
                error=error,
                next_probe_in=round(self.health.next_probe - self.clock.now(), 3),
            )
            return
        dead = await record_failure(
            self.store,
            self.sink,
            item,
            self.settings,
            now=self.clock.wall(),
            jitter=self.jitter(),
            permanent=permanent,
            error=error,
            retry_after=retry_after,
        )
        if dead:
            self.dead += 1
            self._count("dead")

    async def skip(self, items: Sequence[OutboxItem]) -> int:
        """Events `format` does not send: done without a POST, so none waits in the outbox."""
        if items:
            await self.store.mark_delivered(self.sink, [i.seq for i in items])
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
