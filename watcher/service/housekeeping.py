"""Background upkeep of the state file: pruning what finished longer ago than retention."""

from __future__ import annotations

import structlog

from watcher.core.clock import Clock
from watcher.state.astore import AsyncStore

__all__ = ["PRUNE_EVERY", "prune_forever", "prune_once"]

log = structlog.get_logger("watcher.housekeeping")

#: Pruning runs at start, then this often.
PRUNE_EVERY = 3600.0


async def prune_once(store: AsyncStore, *, retention: float, clock: Clock) -> int:
    """One pass, batch by batch (each a turn on the store's thread); rows deleted."""
    started = clock.now()
    total = 0
    async for deleted in store.prune(clock.wall() - retention):
        total += deleted
    if total:
        log.info(
            "state file pruned",
            rows=total,
            retention=retention,
            seconds=round(clock.now() - started, 3),
        )
    return total


async def prune_forever(store: AsyncStore, *, retention: float, clock: Clock) -> None:
    while True:
        await prune_once(store, retention=retention, clock=clock)
        await clock.sleep(PRUNE_EVERY)
