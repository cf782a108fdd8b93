"""What the store hands out: plain records, the same whichever backend keeps the state."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "OutboxItem",
    "PendingEvent",
    "RunWatch",
    "ThreadWatch",
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


def decode_include(raw: str | None) -> tuple[str, ...] | None:
    """A watch's `include` as stored (JSON text, or NULL: everything)."""
    return None if raw is None else tuple(json.loads(raw))


def encode_include(value: Sequence[str] | None) -> str | None:
    return None if value is None else json.dumps(list(value))
