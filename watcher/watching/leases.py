"""Which watches this replica polls, when replicas share one database: the lease keeper.

Every tick (a third of the lease, or the poll interval if shorter) it renews the leases it
holds, stops the watches whose lease it lost (expired meanwhile, or the watch ended or was
removed elsewhere), takes the free and expired ones and starts them, from the stored cursor
and statuses. Each replica holds its share of the watches (the active ones over the
replicas alive, rounded up): it takes no more, and hands over the rest when one joins. A
clean stop releases its leases, so the others take them at once; a replica that dies keeps
them until they expire. Only for a store that offers leases (PostgreSQL):
on SQLite one process owns the state and every watch is its own.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Sequence

import anyio
import structlog

from watcher.core.clock import Clock
from watcher.service.metrics import Metrics
from watcher.state.store_protocol import LeaseStore, StoreError
from watcher.state.store_records import TakenLease, WatchKey

__all__ = ["SHOWN", "LeaseKeeper", "replica_id"]

log = structlog.get_logger("watcher.leases")

#: Watches listed by name in `/status` (the count is always whole).
SHOWN = 20
#: The shortest wait between two ticks, and how long after another replica's lease ends
#: this one looks for it (the clocks' rounding).
EARLIEST = 0.05
#: How long a clean stop may spend releasing its leases.
RELEASE_SECONDS = 1.0

Start = Callable[[Sequence[WatchKey]], Awaitable[None]]
Stop = Callable[[WatchKey], bool]  # whether the watch was running here


def replica_id() -> str:
    """This process among the replicas: host name (a pod's name), pid, a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def _order(key: WatchKey) -> tuple[str, str]:
    return (key[0], key[1] or "")


def _ids(key: WatchKey) -> dict[str, str | None]:
    return {"thread_id": key[0], "run_id": key[1]}


class LeaseKeeper:
    def __init__(
        self,
        store: LeaseStore,
        *,
        clock: Clock,
        lease: float,
        interval: float,
        replica: str | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.lease = lease
        self.interval = interval
        self.replica = replica or replica_id()
        self.metrics = metrics
        self.held: set[WatchKey] = set()
        self.takeovers = 0
        self._valid_until = 0.0  # (unix time) the leases held run at least until then
        self._next_expiry: float | None = None  # another replica's lease runs out then

    @property
    def period(self) -> float:
        """Seconds between two ticks."""
        return min(self.lease / 3, self.interval)

    def holds(self, key: WatchKey) -> bool:
        return key in self.held

    def _taken(self, taken: TakenLease) -> None:
        self.held.add(taken.key)
        takeover = taken.previous_owner is not None and taken.previous_owner != self.replica
        if takeover:
            self.takeovers += 1
            if self.metrics is not None:
                self.metrics.lease_takeovers.inc()
        log.info(
            "lease taken",
            **_ids(taken.key),
            replica=self.replica,
            previous_owner=taken.previous_owner if takeover else None,
        )
        self._gauge()

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.leases_held.set(len(self.held))

    async def claim(self, key: WatchKey) -> bool:
        """Take `key`'s lease now if it is free (a watch this replica just added or found),
        so its first poll need not wait a tick; whether this replica holds it."""
        if key in self.held:
            return True
        try:
            taken = await self.store.take_lease(
                self.replica, key, self.clock.wall(), lease=self.lease
            )
        except StoreError as exc:
            log.warning("taking a lease failed; the next tick tries again", error=str(exc))
            return False
        if taken is not None:
            self._taken(taken)
        return taken is not None

    async def tick(self) -> tuple[list[WatchKey], list[WatchKey]]:
        """Take what is free, up to this replica's share; renew what is held; hand over
        what is more than the share (a replica joined): (watches taken, watches lost)."""
        now, before = self.clock.wall(), set(self.held)
        seen = await self.store.share(self.replica, now, lease=self.lease)
        self._next_expiry = seen.next_expiry
        alive = seen.alive
        share = -(-seen.active // alive)  # the ceiling: the shares cover every watch
        # taking first drops the leases of watches ended or removed: not renewed after
        # a dead replica's watches are taken at once, whatever the shares: the replicas
        # alive now poll them; the extra is handed over at a later tick (to one that joined)
        room = max(0, share - len(before), seen.expired)
        taken = await self.store.take_leases(self.replica, now, lease=self.lease, limit=room)
        kept = await self.store.renew_leases(self.replica, now, lease=self.lease)
        self._valid_until = now + self.lease
        self.held = kept | {t.key for t in taken}
        for t in taken:
            if t.key not in before:  # (one of ours that expired and came back: kept)
                self._taken(t)
        if alive > 1 and len(self.held) > share and not seen.expired:
            extra = sorted(self.held, key=_order)[share:]
            await self.store.release_leases(self.replica, extra)
            self.held.difference_update(extra)
            log.info(
                "leases handed over: more than this replica's share",
                replica=self.replica,
                count=len(extra),
                share=share,
                replicas=alive,
            )
        self._gauge()
        lost = sorted(before - self.held, key=_order)
        return [t.key for t in taken if t.key not in before], lost

    async def step(self, start: Start, stop: Stop) -> None:
        """One tick, and the watches it took started, those it lost stopped."""
        taken, lost = await self.tick()
        for key in lost:
            if stop(key):  # (one that ended here is simply no longer renewed)
                log.info("lease lost; watch stopped here", **_ids(key), replica=self.replica)
        if taken:
            await start(taken)

    def wait(self) -> float:
        """Seconds until the next tick: the period, or less when another replica's lease
        runs out sooner (one that died: its watches are taken as its leases end)."""
        if self._next_expiry is None:
            return self.period
        return max(EARLIEST, min(self.period, self._next_expiry - self.clock.wall() + EARLIEST))

    async def run(self, start: Start, stop: Stop) -> None:
        """Tick until cancelled; a failed tick is logged and tried again at the next."""
        while True:
            await anyio.sleep(self.wait())  # real time, like the scheduler's waits
            try:
                await self.step(start, stop)
            except StoreError as exc:
                log.warning("renewing leases failed; trying again", error=str(exc))
                if self.held and self.clock.wall() >= self._valid_until:
                    self._give_up(stop)

    def _give_up(self, stop: Stop) -> None:
        """Leases not renewed in time are the others' by now: stop polling those watches
        here, so no watch is polled by two replicas for long."""
        log.warning(
            "leases expired while the database did not answer; their watches stop here",
            replica=self.replica,
            count=len(self.held),
        )
        for key in self.held:
            stop(key)
        self.held.clear()
        self._gauge()

    async def release(self) -> None:
        """At a clean stop: every lease held freed at once for the other replicas."""
        with anyio.move_on_after(RELEASE_SECONDS, shield=True):
            try:
                n = await self.store.release_leases(self.replica)
            except StoreError as exc:
                log.warning("releasing leases failed; they expire instead", error=str(exc))
                return
            log.info("leases released", replica=self.replica, count=n)
        self.held.clear()
        self._gauge()

    def status(self) -> dict[str, object]:
        """The replica in `/status`: its id, the lease, what it holds (the first SHOWN)."""
        keys = sorted(self.held, key=_order)
        return {
            "id": self.replica,
            "lease_seconds": self.lease,
            "leases_held": len(keys),
            "held": [_ids(k) for k in keys[:SHOWN]],
            "takeovers": self.takeovers,
        }
