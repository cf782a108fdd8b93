"""When a failed webhook delivery is tried again, if ever (pure: no I/O, no clock)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["next_attempt_delay", "retry_delay"]


def next_attempt_delay(
    attempts: int, schedule: Sequence[float], *, retry_after: float | None, jitter: float
) -> float:
    """Delay before attempt number `attempts + 1` (attempts made so far ≥ 1).

    The schedule's entry for that attempt (its last entry once past its end), stretched by
    up to 10% of jitter (`jitter` in [0, 1)), and never less than the receiver's Retry-After.
    """
    base = schedule[min(attempts, len(schedule) - 1)]
    delay = base * (1.0 + 0.1 * jitter)
    return max(delay, retry_after or 0.0)


def retry_delay(
    attempts: int,
    schedule: Sequence[float],
    *,
    now: float,
    deadline: float,
    retry_after: float | None,
    jitter: float,
) -> float | None:
    """Delay before the next attempt, or None when it would come past `deadline` (a dead
    letter). When only the receiver's Retry-After goes past it, one last try at `deadline`."""
    delay = next_attempt_delay(attempts, schedule, retry_after=retry_after, jitter=jitter)
    ours = next_attempt_delay(attempts, schedule, retry_after=None, jitter=jitter)
    if now + ours <= deadline < now + delay:
        delay = deadline - now
    return None if now + delay > deadline else delay
