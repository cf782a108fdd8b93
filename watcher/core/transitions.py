"""The pure core: given what we knew and what the API now says, which events happened.

No I/O, no clock, no logging: the caller passes `now` and stores the returned updates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from watcher.core.events import Event, event_id, event_type

__all__ = ["Detection", "ObjectState", "Observed", "detect"]


@dataclass(frozen=True, slots=True)
class ObjectState:
    """What was last reported of one object: its last status and every status reported."""

    status: str
    seen: frozenset[str]

    def after(self, status: str) -> ObjectState:
        return ObjectState(status=status, seen=self.seen | {status})


@dataclass(frozen=True, slots=True)
class Observed:
    """One object as the API returned it, already checked to have an id, kind and status.

    `scope` and `watch` are its source's grouping, which keys the store and keeps one
    watch's events in order: the watched object's id (`watch`), and the id it lives under
    (`scope`, or "" for an object at the top of its API). For the Assistants source they
    are the thread and the run (a run's steps share their run's).
    """

    object_id: str
    kind: str
    status: str
    scope: str
    watch: str
    data: dict[str, Any]

    @property
    def thread_id(self) -> str:  # the Assistants names of the grouping
        return self.scope

    @property
    def run_id(self) -> str:
        return self.watch


@dataclass(frozen=True, slots=True)
class Detection:
    events: list[Event] = field(default_factory=list)
    updates: dict[str, ObjectState] = field(default_factory=dict)


def detect(
    known: Mapping[str, ObjectState], observed: Iterable[Observed], *, now: int
) -> Detection:
    """One event per (object, status) not reported before, in the order observed.

    First sight of an object reports its current status with `previous_status=None`.
    A status an object already had (e.g. `in_progress` again after `requires_action`) is
    not reported twice: its event id would be the same, and consumers drop repeated ids.
    """
    result = Detection()
    for obj in observed:
        before = result.updates.get(obj.object_id) or known.get(obj.object_id)
        if before is not None and obj.status in before.seen:
            continue
        result.events.append(
            Event(
                id=event_id(obj.object_id, obj.status),
                type=event_type(obj.kind, obj.status),
                created_at=now,
                data=obj.data,
                previous_status=None if before is None else before.status,
                # the envelope's grouping: the store's key (an Assistants run's thread and run)
                thread_id=obj.scope,
                run_id=obj.watch,
            )
        )
        if before is None:
            result.updates[obj.object_id] = ObjectState(obj.status, frozenset({obj.status}))
        else:
            result.updates[obj.object_id] = before.after(obj.status)
    return result
