"""Events out: what a poll detected, recorded in the store's outbox, then written to sinks.

Recorded first, written after: a crash in between leaves the events pending, and
`flush_pending` writes them at the next start.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from watcher.astore import AsyncStore
from watcher.events import Event
from watcher.metrics import Metrics, event_label
from watcher.sinks import LineSink
from watcher.transitions import Detection

__all__ = ["OutboxSink", "Recorder"]


class OutboxSink(Protocol):
    """A sink delivering from the store's outbox on its own (the webhook)."""

    name: str

    def deadline(self) -> float: ...

    def wake(self) -> None: ...


class Recorder:
    """Records one poll's events and the watch's position in one transaction; emits them."""

    def __init__(
        self,
        store: AsyncStore,
        *,
        sinks: Sequence[LineSink] = (),
        outboxes: Sequence[OutboxSink] = (),
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.sinks = list(sinks)
        self.outboxes = list(outboxes)
        self.metrics = metrics

    async def record(
        self,
        thread_id: str,
        run_id: str,
        found: Detection,
        *,
        cursor: str | None,
        done: bool,
    ) -> tuple[list[str], list[int]]:
        """The events' bodies (encoded once, for store and sinks) and their outbox seqs.

        Raises the store's error when nothing could be recorded (nothing to emit then).
        """
        bodies = [ev.to_json() for ev in found.events]
        seqs = await self.store.record(
            thread_id,
            run_id,
            found.events,
            found.updates,
            cursor=cursor,
            done=done,
            sinks=[s.name for s in self.sinks] + [o.name for o in self.outboxes],
            deadlines={o.name: o.deadline() for o in self.outboxes},
            bodies=bodies,
        )
        return bodies, seqs

    async def emit(
        self, events: Sequence[Event], bodies: Sequence[str], seqs: Sequence[int]
    ) -> None:
        if not events:
            return
        for outbox in self.outboxes:
            outbox.wake()
        if self.metrics is not None:
            for ev in events:
                self.metrics.events.labels(type=event_label(ev.type)).inc()
        for sink in self.sinks:
            await self._write_and_mark(sink, bodies, seqs)

    async def _write_and_mark(
        self, sink: LineSink, bodies: Sequence[str], seqs: Sequence[int]
    ) -> None:
        """Write, then mark delivered, in one turn of the store's thread: no other store
        call queues between the two, so a crash can repeat (same ids) only what the last
        mark had not committed, not every batch waiting for its turn."""
        store = self.store.sync

        def both() -> None:
            sink.write(bodies)
            store.mark_delivered(sink.name, seqs)

        await self.store.run(both)

    async def flush_pending(self) -> None:
        """Events recorded but not yet written (a crash in between): write them first."""
        for sink in self.sinks:
            while pending := await self.store.pending(sink.name):
                await self._write_and_mark(
                    sink, [p.body for p in pending], [p.seq for p in pending]
                )
