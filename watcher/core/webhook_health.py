"""Whether the webhook endpoint answers: when to probe it, when to release its backlog.

The retry schedule bounds the attempts of each event against a dead endpoint; this decides
how soon the endpoint's return is noticed and acted on. Pure: the caller passes the time
(monotonic seconds) and does the I/O.

- A retryable failure marks the endpoint failing. While it fails, the oldest pending event
  is sent as a probe, at gaps of half the outage so far, at least `PROBE_MIN`, at most
  `PROBE_MAX`, and never before the endpoint's own Retry-After: the return of an endpoint
  down for D seconds is noticed within max(PROBE_MIN, D/2) seconds, and at most PROBE_MAX.
- Any 2xx while failing means the endpoint is back: every pending delivery becomes due at
  once (a release). Releases are at most `RELEASE_EVERY` apart, so an event that the
  endpoint fails every time, while it takes the others, costs one request per
  RELEASE_EVERY rather than one per delivery.
- A process starts as if the endpoint were failing, with a probe due at once: deliveries
  scheduled far ahead by a previous process go out as soon as the endpoint answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["PROBE_MAX", "PROBE_MIN", "RELEASE_EVERY", "EndpointHealth"]

PROBE_MIN = 1.0
PROBE_MAX = 30.0
RELEASE_EVERY = 30.0


@dataclass
class EndpointHealth:
    failing_since: float | None
    next_probe: float
    release_at: float | None = None
    last_release: float = -math.inf

    @classmethod
    def at_start(cls, now: float) -> EndpointHealth:
        return cls(failing_since=now, next_probe=now)

    @property
    def failing(self) -> bool:
        return self.failing_since is not None

    def failed(self, now: float, retry_after: float | None = None) -> None:
        """A retryable failure (connection, timeout, 5xx, 408, 409, 429, 3xx)."""
        if self.failing_since is None:
            self.failing_since = now
        gap = min(PROBE_MAX, max(PROBE_MIN, (now - self.failing_since) / 2))
        self.next_probe = now + max(gap, retry_after or 0.0)

    def answered(self, now: float) -> None:
        """A 2xx: if the endpoint was failing, its backlog is released (soon, or now)."""
        if self.failing_since is None:
            return
        self.failing_since = None
        self.next_probe = math.inf
        self.release_at = max(now, self.last_release + RELEASE_EVERY)

    def probing(self, now: float) -> None:
        """A probe is in flight: no other until it ends (its end sets the next one)."""
        self.next_probe = now + PROBE_MAX

    def probe_due(self, now: float) -> bool:
        return self.failing_since is not None and now >= self.next_probe

    def take_release(self, now: float) -> bool:
        """Whether to release the backlog now (then it is done)."""
        if self.release_at is None or now < self.release_at:
            return False
        self.release_at = None
        self.last_release = now
        return True

    def release_more(self, now: float) -> None:
        """The last release was one batch of a longer backlog: the next one at once."""
        self.release_at = now

    def wake_at(self) -> float:
        """The next time something is to be done: a probe or a release."""
        probe = self.next_probe if self.failing_since is not None else math.inf
        return min(probe, math.inf if self.release_at is None else self.release_at)
