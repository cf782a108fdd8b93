"""A 429 pause that has not run out goes on after a restart: its end is in the state file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import anyio
import structlog

from watcher.api.ratelimit import RateGate
from watcher.state.astore import AsyncStore
from watcher.state.store_protocol import StoreError

__all__ = ["PAUSE_KEY", "PauseKeeper", "Saved", "SavedMeta"]

log = structlog.get_logger("watcher.daemon")

#: The state file's `meta` key holding the end (unix time) of the global 429 pause.
PAUSE_KEY = "api_pause_until"


class SavedMeta(Protocol):
    def get_meta(self, key: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Saved:
    """Values read from the store before (whichever backend), for a sync reader."""

    values: dict[str, str | None]

    def get_meta(self, key: str) -> str | None:
        return self.values.get(key)


class PauseKeeper:
    """A 429 pause that has not run out goes on after a restart: the limit has not reset.

    The gate reports a new pause from inside a request (sync, on the event loop); the end
    is written by `run` through the store's own thread, never beside its transactions.
    """

    def __init__(self, gate: RateGate, store: SavedMeta) -> None:
        try:
            left = gate.restore_pause(float(store.get_meta(PAUSE_KEY) or 0.0))
        except ValueError:
            left = 0.0
        if left > 0:
            log.warning(
                "the API asked to pause before the restart; pausing", seconds=round(left, 1)
            )
        self._end: float | None = None
        self._changed = anyio.Event()
        gate.on_pause = self._note

    def _note(self, end: float) -> None:
        self._end = end
        self._changed.set()

    async def flush(self, store: AsyncStore) -> None:
        """Write the latest pause end, if one came since the last write."""
        end, self._end = self._end, None
        if end is None:
            return
        try:
            await store.set_meta(PAUSE_KEY, f"{end:.3f}")
        except StoreError as exc:
            log.error("cannot write the state file", path=store.path, error=str(exc))

    async def run(self, store: AsyncStore) -> None:
        while True:
            await self._changed.wait()
            self._changed = anyio.Event()
            await self.flush(store)
