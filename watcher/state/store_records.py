"""What the store hands out: plain records, the same whichever backend keeps the state."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "Lease",
    "OutboxItem",
    "PendingEvent",
    "RunWatch",
    "TakenLease",
    "ThreadWatch",
    "WatchKey",
    "decode_include",
    "encode_include",
]


@dataclass(frozen=True, slots=True)
class RunWatch:
    thread_id: str
    run_id: str
    source: str  # "config", "thread", "api", "cli"
    include: tuple[str, ...] | None
    cursor: str | None
    done: bool


@dataclass(frozen=True, slots=True)
class ThreadWatch:
    thread_id: str
    source: str
    include: tuple[str, ...] | None
    started_at: float
    listed: bool


@dataclass(frozen=True, slots=True)
class PendingEvent:
    seq: int
    event_id: str
    thread_id: str
    run_id: str
    body: str


@dataclass(frozen=True, slots=True)
class OutboxItem:
    seq: int
    event_id: str
    thread_id: str
    run_id: str
    type: str
    body: str
    created_at: int
    state: str
    attempts: int
    next_attempt_at: float
    deadline: float | None
    last_error: str | None


#: A watch as leases name it: (thread_id, run_id), run_id None for a thread watch.
WatchKey = tuple[str, str | None]


@dataclass(frozen=True, slots=True)
class Lease:
    """Who polls a watch until when (replicas sharing one database)."""

    thread_id: str
    run_id: str | None  # None: a thread watch
    owner: str
    expires_at: float  # unix time


@dataclass(frozen=True, slots=True)
class Share:
    """What a replica's lease keeper reads each tick: the replicas alive (itself included),
    the active watches, when the next lease another replica holds runs out (unix time;
    None: none), so a dead replica's watches are taken the moment its leases end, and how
    many have run out."""

    alive: int
    active: int
    next_expiry: float | None
    expired: int = 0  # leases of another replica that ran out (it died): to take now


@dataclass(frozen=True, slots=True)
class TakenLease:
    """A lease just taken, and whose it was (None: free, or released at a clean stop)."""

    thread_id: str
    run_id: str | None
    previous_owner: str | None

    @property
    def key(self) -> WatchKey:
        return (self.thread_id, self.run_id)


def decode_include(raw: str | None) -> tuple[str, ...] | None:
    """A watch's `include` as stored (JSON text, or NULL: everything)."""
    return None if raw is None else tuple(json.loads(raw))


def encode_include(value: Sequence[str] | None) -> str | None:
    return None if value is None else json.dumps(list(value))
