"""Events out: what a poll detected, recorded in the store's outbox, then written to sinks.

Recorded first, written after: a crash in between leaves the events pending, and
`flush_pending` writes them at the next start.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Protocol

from watcher.core.transitions import Detection
from watcher.delivery.sinks import LineSink
from watcher.service.metrics import Metrics, event_label
from watcher.state.astore import AsyncStore

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
    ) -> Exception | None:
        """Records the poll's events and position, then writes the events to the line
        sinks and marks them delivered, in one turn of the store; wakes the outboxes.

        Raises the store's error when nothing could be recorded (nothing was written then).
        Returns what failed after the recording committed (a closed pipe), for the caller
        to raise once it has taken the events as reported.
        """
        bodies = [ev.to_json() for ev in found.events]
        recorded = await self.store.record_and_write(
            thread_id,
            run_id,
            found.events,
            found.updates,
            cursor=cursor,
            done=done,
            sinks=[s.name for s in self.sinks] + [o.name for o in self.outboxes],
            deadlines={o.name: o.deadline() for o in self.outboxes},
            bodies=bodies,
            writes=[(s.name, s.write) for s in self.sinks],
        )
        # seq 0: another replica recorded that change first (PostgreSQL); it reports it
        kept = [ev for ev, seq in zip(found.events, recorded.seqs, strict=True) if seq]
        if kept:
            for outbox in self.outboxes:
                outbox.wake()
            if self.metrics is not None:
                for ev in kept:
                    self.metrics.events.labels(type=event_label(ev.type)).inc()
        return recorded.failure

    async def flush_pending(self) -> None:
        """Events recorded but not yet written (a crash in between): write them first."""
        for sink in self.sinks:
            while pending := await self.store.pending(sink.name):
                bodies = [p.body for p in pending]
                await self.store.write_then_mark(
                    sink.name, partial(sink.write, bodies), [p.seq for p in pending]
                )
