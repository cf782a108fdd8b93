"""The PostgreSQL store where the daemon's parts take an `AsyncStore`: the same coroutines,
`PgStore`'s own, so only the daemon's store construction knows the backend.

`run(fn)` runs a plain function of a `Store` (`reconcile`'s, one hand-off on SQLite) in a
worker thread, with `sync` as a blocking view of the PostgreSQL store: each call goes back
to the event loop (`anyio.from_thread`) and waits for its answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar, cast

import anyio.from_thread
import anyio.to_thread

from watcher.core.events import Event
from watcher.core.transitions import ObjectState
from watcher.state.astore import AsyncStore, Recorded, Write
from watcher.state.store import Store
from watcher.state.store_pg import PgStore
from watcher.state.store_protocol import StateStore

__all__ = ["PgAsyncStore"]

T = TypeVar("T")

#: The `StateStore`'s methods: on this adapter, those of the PostgreSQL store itself.
METHODS = tuple(name for name in vars(StateStore) if not name.startswith("_") and name != "path")


class _Blocking:
    """`PgStore`'s methods as blocking calls, for a worker thread of the event loop."""

    def __init__(self, store: PgStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._store, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return anyio.from_thread.run(partial(method, *args, **kwargs))

        return call


class PgAsyncStore(AsyncStore):
    def __init__(self, store: PgStore) -> None:  # (no SQLite `Store` underneath)
        self.pg = store
        self.sync = cast(Store, _Blocking(store))
        self.path = store.path
        self.lease_store = store
        for name in METHODS:  # instance attributes: they come before AsyncStore's methods
            setattr(self, name, getattr(store, name))

    async def run(self, fn: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(fn)

    async def write_then_mark(
        self, sink: str, write: Callable[[], None], seqs: Sequence[int]
    ) -> None:
        write()
        await self.pg.mark_delivered(sink, seqs)

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
        """`AsyncStore.record_and_write` on the event loop (no store thread here)."""
        recorded = Recorded(
            await self.pg.record(
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
        )
        kept, kept_seqs = recorded.kept(bodies)
        try:
            for sink, write in writes if kept else ():
                write(kept)
                await self.pg.mark_delivered(sink, kept_seqs)
        except Exception as exc:  # noqa: BLE001 (handed back: the caller raises it)
            return Recorded(recorded.seqs, exc)
        return recorded
