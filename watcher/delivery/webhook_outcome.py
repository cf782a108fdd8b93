"""What a failed webhook delivery leaves in the outbox: a retry on the schedule, or a dead
letter (refused for good, or past `max_age`); each logged."""

from __future__ import annotations

import structlog

from watcher.config.settings import WebhookSettings
from watcher.delivery.webhook_retry import retry_delay
from watcher.state.store_protocol import StateStore
from watcher.state.store_records import OutboxItem

__all__ = ["record_failure"]

log = structlog.get_logger("watcher.webhook")


async def record_failure(
    store: StateStore,
    sink: str,
    item: OutboxItem,
    settings: WebhookSettings,
    *,
    now: float,
    jitter: float,
    permanent: bool,
    error: str,
    retry_after: float | None,
) -> bool:
    """Rescheduled or dead-lettered (either ends the sink's claim on it); True when dead."""
    attempts = item.attempts + 1
    deadline = item.deadline if item.deadline is not None else item.created_at + settings.max_age
    delay = retry_delay(
        attempts,
        settings.schedule,
        now=now,
        deadline=deadline,
        retry_after=retry_after,
        jitter=jitter,
    )
    if permanent or delay is None:
        why = error if permanent else f"{error}; past max_age ({settings.max_age:.0f}s)"
        await store.mark_dead(sink, item.seq, error=why)
        log.error(
            "webhook delivery dead-lettered", event_id=item.event_id, error=why, attempts=attempts
        )
        return True
    await store.reschedule(sink, item.seq, at=now + delay, error=error)
    log.warning(
        "webhook delivery failed; will retry",
        event_id=item.event_id,
        error=error,
        attempt=attempts,
        delay=round(delay, 3),
    )
    return False
