"""The effective interval of active runs, measured at each poll: a gauge, and one warning
when the request rate or the concurrency cap stretches it past twice `interval`."""

from __future__ import annotations

import structlog

from watcher.api.ratelimit import RateGate
from watcher.config.settings import PollSettings
from watcher.core.pacing import PaceMonitor
from watcher.service.metrics import Metrics
from watcher.watching.watch_state import RunState

__all__ = ["track_pace"]

log = structlog.get_logger("watcher.app")  # the logger's name is kept


def track_pace(
    pace: PaceMonitor,
    state: RunState,
    now: float,
    *,
    poll: PollSettings,
    gate: RateGate,
    metrics: Metrics | None,
) -> None:
    """One poll of `state` at `now` (monotonic) into the monitor; warn, set the gauges."""
    last, state.polled_at = state.polled_at, now
    if last is None or state.delay > poll.interval:
        return  # first poll, or a run backing off: not held back by us
    if pace.observe(now, intended=state.delay, actual=now - last):
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
            f"active runs are polled every {pace.effective:.1f}s, not every "
            f"{poll.interval:g}s, for {pace.window:.0f}s: {cause} holds them back",
            effective_interval=round(pace.effective or 0.0, 3),
            interval=poll.interval,
            request_rate=None if gate.rate is None else round(gate.rate, 2),
            max_requests_per_second=poll.max_requests_per_second,
            max_concurrency=poll.max_concurrency,
        )
    if metrics is not None and pace.effective is not None:
        metrics.effective_interval.set(pace.effective)
        metrics.request_rate.set(gate.rate or 0.0)
