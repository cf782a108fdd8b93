"""Delays and rate limits a server sends in its headers, parsed strictly and bounded.

A server (or anything between it and us) may send any text: a delay is used only when it is
a finite, non-negative number, and never longer than `MAX_SERVER_DELAY`, so one bad header
cannot stop polling or deliveries for good.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "MAX_SERVER_DELAY",
    "RateHint",
    "parse_delay",
    "parse_duration",
    "parse_poll_after",
    "parse_rate_hint",
    "parse_retry_after",
]

#: The longest wait taken from a server (Retry-After, retry-after-ms, openai-poll-after-ms,
#: x-ratelimit-reset-requests): longer asks are cut to this.
MAX_SERVER_DELAY = 600.0

_NUMBER = re.compile(r"\s*\+?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_delay(raw: str | None, *, scale: float = 1.0) -> float | None:
    """`raw` as seconds (`scale` 1000 for milliseconds); None unless a finite number >= 0.

    Capped at `MAX_SERVER_DELAY`. "-5", "nan", "inf", "1e999", "" and dates give None.
    """
    if raw is None or _NUMBER.fullmatch(raw) is None:
        return None
    value = float(raw) / scale
    if not math.isfinite(value):
        return None
    return min(value, MAX_SERVER_DELAY)


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """`retry-after-ms` (OpenAI) or `Retry-After` in seconds (HTTP dates are ignored)."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = parse_delay(headers.get(name), scale=scale)
        if value is not None:
            return value
    return None


def parse_poll_after(headers: Mapping[str, str]) -> float | None:
    """`openai-poll-after-ms` in seconds, strictly parsed and capped."""
    return parse_delay(headers.get("openai-poll-after-ms"), scale=1000.0)


def parse_duration(raw: str | None) -> float | None:
    """OpenAI's reset durations: "1s", "20ms", "6m0s", "1m30.5s", "1h2m3s"; a bare number is
    seconds. None unless well-formed; capped at `MAX_SERVER_DELAY`."""
    if raw is None:
        return None
    text = raw.strip()
    plain = parse_delay(text)
    if plain is not None or not text:
        return plain
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _UNIT[match.group(2)]
        pos = match.end()
    if pos != len(text) or not math.isfinite(total):
        return None
    return min(total, MAX_SERVER_DELAY)


def _count(raw: str | None) -> int | None:
    if raw is None or not raw.strip().isdigit() or len(raw.strip()) > 12:
        return None
    return int(raw.strip())


@dataclass(frozen=True, slots=True)
class RateHint:
    """What `x-ratelimit-*-requests` said: requests left, seconds until the limit is full
    again, and the limit itself (any of them None when absent or malformed)."""

    remaining: int | None = None
    reset: float | None = None
    limit: int | None = None

    def __bool__(self) -> bool:
        return self.remaining is not None


def parse_rate_hint(headers: Mapping[str, str]) -> RateHint:
    return RateHint(
        remaining=_count(headers.get("x-ratelimit-remaining-requests")),
        reset=parse_duration(headers.get("x-ratelimit-reset-requests")),
        limit=_count(headers.get("x-ratelimit-limit-requests")),
    )
