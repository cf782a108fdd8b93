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

from watcher.config.settings import RetrySettings
from watcher.core.errors import RateLimitedError, TransientError
from watcher.core.rate_headers import MAX_SERVER_DELAY

__all__ = ["MAX_RETRY_AFTER", "WaitRetryAfter", "retry_policy"]

log = structlog.get_logger("watcher.retry")

#: A server asking us to wait longer than this is capped: we poll again later anyway.
MAX_RETRY_AFTER = MAX_SERVER_DELAY


class WaitRetryAfter(wait_base):
    """Exponential backoff with jitter, but never less than the server's Retry-After.

    With `first` set (the poll interval), a first failure while the server does not signal
    overload (`overloaded()` false, not a 429) waits at most max(first, Retry-After): one
    lost answer costs no more than one interval. Repeated failures back off exponentially.
    """

    def __init__(
        self,
        fallback: wait_base,
        cap: float,
        *,
        first: float | None = None,
        overloaded: Callable[[], bool] = lambda: False,
    ) -> None:
        self.fallback = fallback
        self.cap = cap
        self.first = first
        self.overloaded = overloaded

    def __call__(self, retry_state: RetryCallState) -> float:
        delay = min(float(self.fallback(retry_state)), self.cap)
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        retry_after = exc.retry_after if isinstance(exc, TransientError) else None
        if (
            self.first is not None
            and retry_state.attempt_number == 1
            and not isinstance(exc, RateLimitedError)
            and not self.overloaded()
        ):
            delay = min(delay, self.first)
        if retry_after is not None:
            return min(max(delay, retry_after), MAX_RETRY_AFTER)
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
    first: float | None = None,
    overloaded: Callable[[], bool] = lambda: False,
) -> AsyncRetrying:
    """Retry transient errors with backoff; after `attempts`, re-raise the last error.

    `first` and `overloaded`: see `WaitRetryAfter`."""
    return AsyncRetrying(
        stop=stop_after_attempt(settings.attempts),
        wait=WaitRetryAfter(
            wait_exponential(multiplier=settings.initial_delay, max=settings.max_delay)
            + wait_random(0, settings.initial_delay),
            cap=settings.max_delay,
            first=first,
            overloaded=overloaded,
        ),
        retry=retry_if_exception_type(TransientError),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
