"""A request rate limit like a hosted API's: a token bucket, 429 beyond it, OpenAI's headers.

Every answer carries `x-ratelimit-limit-requests` (the bucket's size),
`x-ratelimit-remaining-requests` and `x-ratelimit-reset-requests` (time until the bucket is
full again, "1s"/"20ms" style); a refusal adds `retry-after-ms` (time until one request is
allowed again).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

__all__ = ["TokenBucket", "format_duration"]


def format_duration(seconds: float) -> str:
    """OpenAI's style: "20ms" below a second, "1.5s", "6m0s"."""
    if seconds < 1.0:
        return f"{math.ceil(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60.0)
    return f"{int(minutes)}m{rest:.3g}s" if minutes else f"{rest:.3g}s"


class TokenBucket:
    """`rate` requests per second, up to `burst` at once (default: one second's worth)."""

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate limit: must be a number > 0, got {rate}")
        self.rate = rate
        self.size = burst if burst is not None else max(1.0, rate)
        self.now = now
        self.tokens = self.size
        self._at = now()
        self.allowed = 0
        self.refused = 0

    def take(self) -> tuple[bool, dict[str, str]]:
        """Spend one token if there is one: (allowed, headers for the answer)."""
        t = self.now()
        self.tokens = min(self.size, self.tokens + (t - self._at) * self.rate)
        self._at = t
        ok = self.tokens >= 1.0
        if ok:
            self.tokens -= 1.0
            self.allowed += 1
        else:
            self.refused += 1
        headers = {
            "x-ratelimit-limit-requests": str(int(self.size)),
            "x-ratelimit-remaining-requests": str(int(self.tokens)),
            "x-ratelimit-reset-requests": format_duration((self.size - self.tokens) / self.rate),
        }
        if not ok:
            headers["retry-after-ms"] = str(math.ceil((1.0 - self.tokens) / self.rate * 1000))
        return ok, headers
