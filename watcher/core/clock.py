"""The one seam for time: monotonic now, wall clock and sleep, injectable in tests."""

from __future__ import annotations

import time
from typing import Protocol

import anyio

__all__ = ["AnyioClock", "Clock"]


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds (the event loop's clock)."""
        ...

    def wall(self) -> float:
        """Unix time in seconds."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class AnyioClock:
    """The real clock, through anyio so a virtual-time test loop still controls it."""

    def now(self) -> float:
        return anyio.current_time()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)
