"""Health and outcomes: whether the daemon is alive and ready, what its polls wait on, and
how each watched run ended (for `watch --exit-status`)."""

from __future__ import annotations

from watcher.api.ratelimit import RateGate
from watcher.core.clock import Clock
from watcher.watching.scheduler import Scheduler
from watcher.watching.watch_state import RunOutcome

__all__ = ["LIVENESS_WINDOW", "Health"]

#: /livez fails when the dispatcher has not turned for this long (it turns every second,
#: even while every poll waits on the API).
LIVENESS_WINDOW = 30.0


class Health:
    def __init__(self, clock: Clock, scheduler: Scheduler, gate: RateGate) -> None:
        self.clock = clock
        self.scheduler = scheduler
        self.gate = gate
        self.ready = False  # initialised; False again once stopping
        self.fatal: str | None = None  # why `watch` stopped early (an auth error)
        self.outcomes: dict[tuple[str, str], RunOutcome] = {}

    def health(self) -> dict[str, object]:
        """Alive: the dispatcher turns (it wakes every second, waiting on the API or not).

        What the polls wait on is shown beside it, and never makes the daemon "not alive":
        polls in flight, the oldest one's age, and what is left of a 429 pause.
        """
        now = self.clock.now()
        return {
            "ready": self.ready,
            "alive": now - self.scheduler.last_progress < LIVENESS_WINDOW,
            "last_progress_seconds_ago": round(now - self.scheduler.last_progress, 3),
            **self.waiting(),
        }

    def waiting(self) -> dict[str, float]:
        """What the polls wait on now: how many, the oldest's age, a 429 pause's rest."""
        now = self.clock.now()
        oldest = self.scheduler.oldest_in_flight()
        return {
            "polls_in_flight": self.scheduler.in_flight,
            "oldest_poll_in_flight_seconds": round(now - oldest, 3) if oldest is not None else 0.0,
            "api_paused_for_seconds": round(max(0.0, self.gate.paused_until - now), 3),
        }

    def lag(self) -> float:
        """How late the last poll started against its due time (seconds): the poll-lag gauge."""
        return self.scheduler.lag
