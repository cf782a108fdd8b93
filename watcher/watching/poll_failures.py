"""What a failed poll does: its log line, the watch's outcome, the delay until the next try.

The client sorts errors at its boundary (`watcher.core.errors`); here each kind gets its
answer. A transient one is tried again at the next interval; a refused key waits
`[retry] auth_backoff` (or ends a one-off `watch` with exit 3); a 404 ends the watch
(exit 4); any other refusal waits `max_interval`. A 404 from a base URL where no call has
ever succeeded is said once, in the words of a source that declares them
(`Source.no_api_message`): no such API answers there.
"""

from __future__ import annotations

import structlog

from watcher.config.settings import Settings
from watcher.core.errors import ApiError, AuthError, NotFoundError, TransientError
from watcher.core.urls import mask_url
from watcher.service.metrics import Metrics
from watcher.sources.base import Source
from watcher.sources.keys import describe
from watcher.state.astore import AsyncStore
from watcher.watching.health import Health
from watcher.watching.scheduler import Scheduler
from watcher.watching.watch_state import RunOutcome, RunState, ThreadState, WatchTable

__all__ = ["PollFailures"]

log = structlog.get_logger("watcher.app")  # the logger's name is kept


class PollFailures:
    """The poller's answers to a failed poll; `settings` is the poller's, in force now."""

    def __init__(
        self,
        *,
        store: AsyncStore,
        table: WatchTable,
        health: Health,
        scheduler: Scheduler,
        metrics: Metrics | None,
        stop_on_error: bool,
    ) -> None:
        self.store = store
        self.table = table
        self.health = health
        self.scheduler = scheduler
        self.metrics = metrics
        self.stop_on_error = stop_on_error
        self._api_missing_said: set[str] = set()  # each source's message, once

    def _api_missing(self, source: Source, exc: ApiError, settings: Settings) -> str | None:
        """The source's "no such API at this base URL" if `exc` says so (logged once)."""
        template = source.no_api_message
        if template is None or not isinstance(exc, NotFoundError) or not exc.api_missing:
            return None
        message = template.format(base_url=mask_url(settings.api.base_url))
        if template not in self._api_missing_said:
            self._api_missing_said.add(template)
            log.error(message)
        return message

    async def poll_failed(self, state: RunState, exc: ApiError, settings: Settings) -> float | None:
        """A watch's poll failed: the delay until the next, or None when the watch ends."""
        key = state.key
        if isinstance(exc, TransientError):
            log.warning(
                "poll failed; will retry at the next poll", run_id=state.run_id, error=str(exc)
            )
            return settings.poll.interval
        if isinstance(exc, AuthError):
            log.error(str(exc), run_id=state.run_id)
            if self.stop_on_error:
                self.health.outcomes[key] = RunOutcome(error=str(exc), exit_code=3)
                self.health.fatal = str(exc)
                self.scheduler.stop()
                return None
            return settings.retry.auth_backoff
        if isinstance(exc, NotFoundError):
            missing = self._api_missing(state.source, exc, settings)
            message = missing or f"{describe(state.thread_id, state.run_id)} not found"
            gone = state.run_id in state.known and state.source.objects_expire
            if gone and self.metrics is not None:  # seen before: gone past its retention
                self.metrics.watches_gone.inc()
            (log.warning if gone else log.error)(
                f"{message}; watch dropped", run_id=state.run_id, detail=str(exc)
            )
            self.health.outcomes[key] = RunOutcome(error=message, exit_code=4)
            await self.store.remove_run_watch(state.thread_id, state.run_id)
            self.table.runs.pop(key, None)
            return None
        log.error(
            "the API refused the request; will retry later", run_id=state.run_id, error=str(exc)
        )
        return settings.poll.max_interval

    def listing_failed(self, state: ThreadState, exc: ApiError, settings: Settings) -> float:
        """A discovery watch's listing failed: the delay until the next."""
        if isinstance(exc, TransientError):
            log.warning(
                "listing runs failed; will retry", thread_id=state.thread_id, error=str(exc)
            )
            return settings.poll.interval
        self._api_missing(state.source, exc, settings)
        log.error(
            "listing runs refused; will retry later", thread_id=state.thread_id, error=str(exc)
        )
        return (
            settings.retry.auth_backoff
            if isinstance(exc, AuthError)
            else (settings.poll.max_interval)
        )
