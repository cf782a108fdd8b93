"""The simulator's clocks: real (monotonic, from creation) or manual (moved by tests)."""

from __future__ import annotations

import math
import time
from typing import Protocol

__all__ = ["ManualClock", "RealClock", "SimClock"]


class SimClock(Protocol):
    """The simulator's time: seconds since it started."""

    def now(self) -> float: ...


class RealClock:
    """Seconds since creation, on the monotonic clock."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self._start


class ManualClock:
    """Starts at 0 and moves only when told: deterministic tests."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> float:
        if not (seconds >= 0 and math.isfinite(seconds)):
            raise ValueError(f"must be a finite number >= 0, got {seconds}")
        self.t += seconds
        return self.t
