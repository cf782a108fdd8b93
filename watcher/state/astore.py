"""The state file off the event loop: the `Store`'s methods as coroutines, run one at a
time in a worker thread (one connection, its transactions never interleaved).

A poll that records a transition, or a webhook delivery marked done, then waits on SQLite
(an fsync, a busy writer) without stalling every other poll, delivery and the watchdog.
This is the SQLite `StateStore`: SQLite's errors come out as `StoreError`.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Concatenate, ParamSpec, TypeVar

import anyio
import anyio.to_thread

from watcher.core.events import Event
from watcher.core.transitions import ObjectState
from watcher.state.store import Store
from watcher.state.store_protocol import LeaseStore, StateStore, StoreError

__all__ = ["AsyncStore", "Recorded", "Write"]

#: Writes already-encoded events, in order, to one sink (a `LineSink`'s `write`).
Write = Callable[[Sequence[str]], None]


@dataclass(frozen=True)
class Recorded:
    """What `record_and_write` did: the outbox seqs (0: another replica recorded that
    change first), and what failed after the recording had committed, if anything."""

    seqs: list[int]
    failure: Exception | None = None

    def kept(self, bodies: Sequence[str]) -> tuple[list[str], list[int]]:
        """The bodies and seqs this process recorded (and so writes)."""
        pairs = [(body, seq) for body, seq in zip(bodies, self.seqs, strict=True) if seq]
        return [b for b, _ in pairs], [s for _, s in pairs]


P = ParamSpec("P")
T = TypeVar("T")

#: One limiter per Store, whoever wraps it: its connection is used by one thread at a time.
_limiters: weakref.WeakKeyDictionary[Store, anyio.CapacityLimiter] = weakref.WeakKeyDictionary()


def _threaded(
    method: Callable[Concatenate[Store, P], T],
) -> Callable[Concatenate[AsyncStore, P], Coroutine[Any, Any, T]]:
    async def call(self: AsyncStore, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.run(partial(method, self.sync, *args, **kwargs))

    call.__name__ = method.__name__
    call.__doc__ = method.__doc__
    return call


class AsyncStore:
    """Same method names as `Store`; each call awaits its turn on the store's thread."""

    #: Leases on watches, where the store is shared by replicas (PostgreSQL); None here:
    #: one process owns the state file, so every watch is its own.
    lease_store: LeaseStore | None = None

    def __init__(self, store: Store) -> None:
        self.sync = store
        self.path = store.path

    @classmethod
    def wrap(cls, store: Store | AsyncStore) -> AsyncStore:
        return store if isinstance(store, AsyncStore) else cls(store)

    async def run(self, fn: Callable[[], T]) -> T:
        limiter = _limiters.get(self.sync)
        if limiter is None:
            limiter = _limiters[self.sync] = anyio.CapacityLimiter(1)
        try:
            return await anyio.to_thread.run_sync(fn, limiter=limiter)
        except sqlite3.Error as exc:
            raise StoreError(f"state file {self.path}: {exc}") from exc

    async def write_then_mark(
        self, sink: str, write: Callable[[], None], seqs: Sequence[int]
    ) -> None:
        """`write()` the events, then mark them delivered to `sink`, in one turn of the
        store's thread: no other store call queues between the two, so a crash repeats
        (same ids) at most the batch being marked, not every batch waiting for its turn."""
        store = self.sync

        def both() -> None:
            write()
            store.mark_delivered(sink, seqs)

        await self.run(both)

    async def record_and_write(
        self,
        thread_id: str,
        run_id: str,
        events: Sequence[Event],
        updates: dict[str, ObjectState],
        *,
        cursor: str | None,
        done: bool,
        sinks: Sequence[str],
        deadlines: dict[str, float],
        bodies: Sequence[str],
        writes: Sequence[tuple[str, Write]],
    ) -> Recorded:
        """`record`, then each of `writes` given the new events and those marked delivered
        to its sink, all in one turn of the store's thread (one hand-off per poll, not two).

        Raises `StoreError` when nothing was recorded; a failure after the recording
        committed (a closed pipe, a mark that failed) is returned in `Recorded.failure`:
        the events are recorded, so the caller must not detect them again.
        """
        store = self.sync

        def turn() -> Recorded:
            seqs = store.record(
                thread_id,
                run_id,
                events,
                updates,
                cursor=cursor,
                done=done,
                sinks=sinks,
                deadlines=deadlines,
                bodies=bodies,
            )
            recorded = Recorded(seqs)
            kept, kept_seqs = recorded.kept(bodies)
            try:
                for sink, write in writes if kept else ():
                    write(kept)
                    store.mark_delivered(sink, kept_seqs)
            except sqlite3.Error as exc:
                return Recorded(seqs, StoreError(f"state file {self.path}: {exc}"))
            except Exception as exc:  # noqa: BLE001 (handed back: the caller raises it)
                return Recorded(seqs, exc)
            return recorded

        return await self.run(turn)

    async def prune(self, cutoff: float) -> AsyncIterator[int]:
        """`Store.prune`, each batch (one transaction) in its own turn on the thread."""
        steps = self.sync.prune(cutoff)
        while (deleted := await self.run(partial(next, steps, None))) is not None:
            yield deleted

    add_run_watch = _threaded(Store.add_run_watch)
    mark_runs_ignored = _threaded(Store.mark_runs_ignored)
    remove_run_watch = _threaded(Store.remove_run_watch)
    run_watches = _threaded(Store.run_watches)
    add_thread_watch = _threaded(Store.add_thread_watch)
    remove_thread_watch = _threaded(Store.remove_thread_watch)
    thread_watches = _threaded(Store.thread_watches)
    watch_page = _threaded(Store.watch_page)
    watch_count = _threaded(Store.watch_count)
    has_watch = _threaded(Store.has_watch)
    set_config_include = _threaded(Store.set_config_include)
    mark_thread_listed = _threaded(Store.mark_thread_listed)
    runs_of_thread = _threaded(Store.runs_of_thread)
    known_states = _threaded(Store.known_states)
    record = _threaded(Store.record)
    pending = _threaded(Store.pending)
    mark_delivered = _threaded(Store.mark_delivered)
    due_heads = _threaded(Store.due_heads)
    claim_due_heads = _threaded(Store.claim_due_heads)
    claim_oldest_head = _threaded(Store.claim_oldest_head)
    unclaim = _threaded(Store.unclaim)
    next_due = _threaded(Store.next_due)
    reschedule = _threaded(Store.reschedule)
    mark_dead = _threaded(Store.mark_dead)
    queue_depth = _threaded(Store.queue_depth)
    outbox = _threaded(Store.outbox)
    replay = _threaded(Store.replay)
    get_meta = _threaded(Store.get_meta)
    set_meta = _threaded(Store.set_meta)
    oldest_head = _threaded(Store.oldest_head)
    release = _threaded(Store.release)
    note_failure = _threaded(Store.note_failure)
    purge = _threaded(Store.purge)


def _is_a_state_store(store: AsyncStore) -> StateStore:
    return store  # mypy checks that AsyncStore implements the protocol
