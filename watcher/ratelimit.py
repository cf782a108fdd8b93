"""Request pacing: a global token bucket and a global pause after a 429."""

from __future__ import annotations

from watcher.clock import Clock

__all__ = ["RateGate"]


class RateGate:
    """Every request passes here: at most `rate` per second, and none during a pause.

    A 429 pauses every request until the limit resets, since limits are per organization.
    Single event loop, so no locks: each caller reserves its slot before it sleeps.
    """

    def __init__(self, clock: Clock, *, rate: float, burst: float | None = None) -> None:
        self.clock = clock
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._tat = clock.now()  # theoretical arrival time (GCRA)
        self._paused_until = 0.0

    def set_ceiling(self, rate: float) -> None:
        """A new `[poll] max_requests_per_second` (a reload): applies from the next request."""
        self.rate = rate
        self.burst = max(1.0, rate)

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self.clock.now() + seconds)

    @property
    def paused_until(self) -> float:
        return self._paused_until

    def reserve(self) -> float:
        """Take a slot; return how long the caller must wait before sending (GCRA)."""
        now = self.clock.now()
        interval = 1.0 / self.rate
        start = max(now, self._paused_until)
        tat = max(self._tat, start)
        send_at = max(start, tat - (self.burst - 1.0) * interval)
        self._tat = tat + interval
        return send_at - now

    async def wait(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await self.clock.sleep(delay)
