"""The retry policy as plain data: tenacity built from settings, sleep injected."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)
from tenacity.wait import wait_base

from watcher.config import RetrySettings
from watcher.errors import TransientError

__all__ = ["MAX_RETRY_AFTER", "WaitRetryAfter", "retry_policy"]

log = structlog.get_logger("watcher.retry")

#: A server asking us to wait longer than this is capped: we poll again later anyway.
MAX_RETRY_AFTER = 600.0


class WaitRetryAfter(wait_base):
    """Exponential backoff with jitter, but never less than the server's Retry-After."""

    def __init__(self, fallback: wait_base, cap: float) -> None:
        self.fallback = fallback
        self.cap = cap

    def __call__(self, retry_state: RetryCallState) -> float:
        delay = min(float(self.fallback(retry_state)), self.cap)
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, TransientError) and exc.retry_after is not None:
            return min(max(delay, exc.retry_after), MAX_RETRY_AFTER)
        return delay


def _log_retry(retry_state: RetryCallState) -> None:
    outcome = retry_state.outcome
    exc = outcome.exception() if outcome is not None else None
    delay = retry_state.next_action.sleep if retry_state.next_action else 0.0
    log.warning(
        "retrying",
        attempt=retry_state.attempt_number,
        delay=round(delay, 3),
        error=str(exc),
        status=getattr(exc, "status", None),
    )


def retry_policy(
    settings: RetrySettings,
    *,
    sleep: Callable[[float], Awaitable[None]],
    before_sleep: Callable[[RetryCallState], Any] = _log_retry,
) -> AsyncRetrying:
    """Retry transient errors with backoff; after `attempts`, re-raise the last error."""
    return AsyncRetrying(
        stop=stop_after_attempt(settings.attempts),
        wait=WaitRetryAfter(
            wait_exponential(multiplier=settings.initial_delay, max=settings.max_delay)
            + wait_random(0, settings.initial_delay),
            cap=settings.max_delay,
        ),
        retry=retry_if_exception_type(TransientError),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
