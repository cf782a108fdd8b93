"""Request pacing that adapts to the server: AIMD on 429, the rate headers, a global pause.

Pure apart from the injected clock: the client reports each answer, the gate says how long
the next request waits. No fixed budget: with no ceiling configured and nothing refused,
requests go as fast as the concurrency cap lets them.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

from watcher.core.clock import Clock
from watcher.core.rate_headers import MAX_SERVER_DELAY, RateHint

__all__ = ["BETA", "DEFAULT_PAUSE", "MIN_RATE", "RateGate"]

#: A 429 cuts the rate to this share of the rate allowed (or sent, when none was).
BETA = 0.5
#: The rate never drops below this (requests per second).
MIN_RATE = 1.0
#: A 429 without Retry-After pauses every request this long.
DEFAULT_PAUSE = 1.0
#: The send rate is measured over this window (seconds).
WINDOW = 1.0
#: After this long with no refusal and the rate not holding anything back, the learned
#: rate is dropped: the server's limit may have been raised.
RELEASE_AFTER = 60.0
#: While the rate holds requests back it grows, per second: by `RECOVER` of the rate before
#: the last cut while below it (back in a second: a storm's backlog clears fast), then by
#: `INCREASE` of it (at least 1 request/s), probing for more.
RECOVER = 0.5
INCREASE = 0.1
#: The rate is cut at most once in this many seconds: later 429s of the same storm only
#: pause (their Retry-After), since the send rate measured across a pause means little.
EPISODE = 5.0
#: With `x-ratelimit-remaining-requests` at or below low water, the rate stops growing and
#: eases by `EASE` per `WINDOW`, so that the bucket is not run dry.
EASE = 0.9


class RateGate:
    """Every request passes here: `wait()` before sending, `answered()` / `refused()` after.

    - `rate` is the learned request rate, None while nothing limits it; `ceiling` the
      configured `[poll] max_requests_per_second` (None: none).
    - A 429 pauses every request for the server's Retry-After (limits are per organization)
      and cuts the rate to `BETA` of the rate allowed (of what was sent over the last second
      when none was), at most once per `EPISODE`.
    - `x-ratelimit-remaining-requests: 0` pauses until one request is replenished, from
      `x-ratelimit-reset-requests` (and `x-ratelimit-limit-requests` when sent).
    - Answers raise the rate additively while it holds requests back and the server's
      `x-ratelimit-remaining-requests` (when sent) is above `low_water` (about the number
      of requests in flight at once, `[poll] max_concurrency`); at or below it the rate
      eases, so the server's bucket is not run dry.
    Single event loop, so no locks: each caller reserves its slot before it sleeps.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        rate: float | None = None,
        burst: float | None = None,
        low_water: int = 8,
    ) -> None:
        self.clock = clock
        self.ceiling = rate
        self.rate: float | None = rate
        self._burst = burst
        self._tat = clock.now()  # theoretical arrival time (GCRA)
        self._paused_until = 0.0
        self._sent: deque[float] = deque()
        self._cut_at = -math.inf  # when the rate was last cut
        self._peak = 0.0  # the rate when it was last cut
        self._raised_at = clock.now()
        self._eased_at = -math.inf
        self._sample: int | None = None  # x-ratelimit-remaining-requests, once per WINDOW
        self._sampled_at = -math.inf
        self._draining = False
        self._held_at = -math.inf  # the last time the rate made a request wait
        self._refused_at = -math.inf
        self.low_water = max(2, low_water)  # about the requests in flight at once
        self.refusals = 0
        #: Told the pause's end (unix time) when a pause starts or grows: kept over restarts.
        self.on_pause: Callable[[float], None] | None = None
        self._told_end = 0.0

    # -- state ------------------------------------------------------------------------------

    @property
    def paused_until(self) -> float:
        return self._paused_until

    def pause(self, seconds: float) -> None:
        seconds = min(seconds, MAX_SERVER_DELAY) if seconds > 0 else 0.0  # nan: 0
        self._paused_until = max(self._paused_until, self.clock.now() + seconds)
        end = self.pause_end_wall()
        if self.on_pause is not None and end is not None and end > self._told_end + 0.5:
            self._told_end = end
            self.on_pause(end)

    def pause_end_wall(self) -> float | None:
        """The pause's end as unix time (to keep it across a restart), None when not paused."""
        left = self._paused_until - self.clock.now()
        return self.clock.wall() + left if left > 0 else None

    def restore_pause(self, wall_end: float) -> float:
        """Resume a pause kept from before a restart; return the seconds left (0 if over)."""
        left = min(wall_end - self.clock.wall(), MAX_SERVER_DELAY)
        if not left > 0:
            return 0.0
        self.pause(left)
        return left

    def set_ceiling(self, ceiling: float | None) -> None:
        """A new `[poll] max_requests_per_second` (a reload): the learned rate is kept below."""
        self.ceiling = ceiling
        if ceiling is not None:
            self.rate = min(self.rate, ceiling) if self.rate is not None else ceiling

    def overloaded(self) -> bool:
        """The server signalled overload lately: paused, or a 429 in the last few seconds."""
        now = self.clock.now()
        return now < self._paused_until or now - self._refused_at < 5.0

    def send_rate(self) -> float:
        """Requests sent per second over the last `WINDOW`."""
        now = self.clock.now()
        while self._sent and self._sent[0] < now - WINDOW:
            self._sent.popleft()
        return len(self._sent) / WINDOW

    # -- before a request ---------------------------------------------------------------------

    def reserve(self) -> float:
        """Take a slot; return how long the caller must wait before sending (GCRA)."""
        now = self.clock.now()
        start = max(now, self._paused_until)
        if self.rate is None:
            send_at = start
        else:
            interval = 1.0 / self.rate
            burst = self._burst if self._burst is not None else max(1.0, self.rate / 10)
            tat = max(self._tat, start)
            send_at = max(start, tat - (burst - 1.0) * interval)
            self._tat = tat + interval
            if send_at > start:
                self._held_at = now
        self._sent.append(send_at)
        while self._sent[0] < now - WINDOW:
            self._sent.popleft()
        return send_at - now

    async def wait(self) -> float:
        """Wait for a slot; return the monotonic time the request goes out."""
        delay = self.reserve()
        if delay > 0:
            await self.clock.sleep(delay)
        return self.clock.now()

    # -- after an answer ----------------------------------------------------------------------

    def answered(self, hint: RateHint | None = None) -> None:
        """Any answer that is not a 429: grow the rate while it holds requests back and the
        server's bucket is neither near empty nor draining; ease it when near empty."""
        now = self.clock.now()
        remaining = hint.remaining if hint is not None else None
        if remaining is not None and now - self._sampled_at >= WINDOW:
            self._draining = self._sample is not None and remaining < self._sample
            self._sample, self._sampled_at = remaining, now
        if remaining == 0 and hint is not None and hint.reset is not None:
            # the bucket is empty: wait for one request's worth (all of it when the size,
            # x-ratelimit-limit-requests, is not sent)
            self.pause(hint.reset / hint.limit if hint.limit else hint.reset)
        if remaining is not None and remaining <= self.low_water:
            self._raised_at = now
            if now - self._eased_at >= WINDOW:
                self._eased_at = now
                base = self.send_rate() if self.rate is None else self.rate
                self._set(max(MIN_RATE, base) * EASE)
            return
        if self.rate is None:
            return
        dt = min(now - self._raised_at, WINDOW)
        self._raised_at = now
        if now - self._held_at <= WINDOW:
            if not (remaining is not None and self._draining):
                if self.rate < self._peak:
                    step = RECOVER * self._peak
                else:
                    step = max(1.0, INCREASE * self.rate)
                self._set(self.rate + step * dt)
        elif (
            self.ceiling is None
            and now - self._held_at > RELEASE_AFTER
            and now - self._refused_at > RELEASE_AFTER
        ):
            self.rate = None

    def refused(self, retry_after: float | None, sent_at: float) -> None:
        """A 429 for a request sent at `sent_at`: pause everything, cut the rate once."""
        now = self.clock.now()
        self.refusals += 1
        self._refused_at = now
        self.pause(DEFAULT_PAUSE if retry_after is None else retry_after)
        if sent_at < self._cut_at or now - self._cut_at < EPISODE:
            return  # in flight before the cut, or the same storm: the pause answers it
        # the rate allowed so far (it grows only while it holds requests back, so it is near
        # what was sent when it mattered), else what was sent in the last second
        base = max(MIN_RATE, self.send_rate() if self.rate is None else self.rate)
        self._peak = base  # the rate to climb back to, at RECOVER of it per second
        self._cut_at = now
        self._raised_at = now
        self._set(base * BETA)

    def _set(self, rate: float) -> None:
        if self.ceiling is not None:
            rate = min(rate, self.ceiling)
        self.rate = max(MIN_RATE, rate)
