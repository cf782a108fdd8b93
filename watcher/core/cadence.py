"""When to poll next: a pure function of what the last poll saw."""

from __future__ import annotations

from watcher.config.settings import PollSettings

__all__ = ["BACKOFF", "next_delay"]

#: Growth factor of the interval while nothing changes.
BACKOFF = 1.5
#: A slow status backs off to at most this many intervals before `idle_after`.
SLOW_CAP = 2.0


def next_delay(
    previous: float,
    *,
    changed: bool,
    slow: bool,
    idle_for: float,
    poll: PollSettings,
    poll_after: float | None = None,
) -> float:
    """Seconds until the next poll of one watch.

    - the server's `openai-poll-after-ms` wins when sent (bounded by `max_interval`);
    - a change snaps back to `interval`;
    - an active watch keeps `interval` for `idle_after` seconds without change, then backs
      off by `BACKOFF` per poll up to `max_interval`;
    - a slow status (requires_action: waiting on the tool outputs) backs off at once, but
      only up to `SLOW_CAP` x `interval` until `idle_after`: the status after it (the run
      going on once the outputs are in) can be short, and must not be missed.
    """
    if poll_after is not None:
        return min(max(poll_after, 0.0), poll.max_interval)
    if changed:
        return poll.interval
    if not slow and idle_for < poll.idle_after:
        return poll.interval
    longer = min(poll.max_interval, max(previous, poll.interval) * BACKOFF)
    if slow and idle_for < poll.idle_after:
        return min(longer, max(previous, poll.interval * SLOW_CAP))
    return longer
