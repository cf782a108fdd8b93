"""How often active runs are really polled, against how often they should be.

Pure: fed the gap between two polls of an active run and the delay asked for it; says when
the gaps have been more than `factor` times too long for `window` seconds in a row (the
request rate or the concurrency cap holds polls back), once until they recover.
"""

from __future__ import annotations

__all__ = ["PaceMonitor"]

#: Weight of the newest gap in the moving averages.
ALPHA = 0.1


class PaceMonitor:
    def __init__(self, *, window: float = 60.0, factor: float = 2.0) -> None:
        self.window = window
        self.factor = factor
        self.effective: float | None = None  # moving average of the real gaps (seconds)
        self.ratio = 1.0  # moving average of real gap / delay asked
        self._since: float | None = None  # when the ratio went past `factor`
        self._warned = False

    def observe(self, now: float, *, intended: float, actual: float) -> bool:
        """One poll of an active run; True exactly once per stretch of `window` seconds."""
        if not (intended > 0 and actual >= 0):
            return False
        if self.effective is None:
            self.effective, self.ratio = actual, actual / intended
        else:
            self.effective += ALPHA * (actual - self.effective)
            self.ratio += ALPHA * (actual / intended - self.ratio)
        if self.ratio <= self.factor:
            self._since, self._warned = None, False
            return False
        if self._since is None:
            self._since = now
        if not self._warned and now - self._since >= self.window:
            self._warned = True
            return True
        return False
