"""Test doubles shared by the unit tests: a clock that records sleeps instead of sleeping."""

from __future__ import annotations


class FakeClock:
    """Monotonic time that only moves when something sleeps on it."""

    def __init__(self, start: float = 1000.0, wall: float = 1_732_450_000.0) -> None:
        self.t = start
        self.wall_base = wall - start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def wall(self) -> float:
        return self.wall_base + self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
