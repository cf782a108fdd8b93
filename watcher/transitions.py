"""The pure core: given what we knew and what the API now says, which events happened.

No I/O, no clock, no logging: the caller passes `now` and stores the returned updates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from watcher.events import Event, event_id, event_type

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
    """One object as the API returned it, already checked to have an id, kind and status."""

    object_id: str
    kind: str
    status: str
    thread_id: str
    run_id: str
    data: dict[str, Any]


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
                thread_id=obj.thread_id,
                run_id=obj.run_id,
            )
        )
        if before is None:
            result.updates[obj.object_id] = ObjectState(obj.status, frozenset({obj.status}))
        else:
            result.updates[obj.object_id] = before.after(obj.status)
    return result
