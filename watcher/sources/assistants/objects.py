"""The Assistants API's objects: kinds, statuses, terminal rules, the beta header; parsing.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from watcher.core.ids import is_valid_id
from watcher.core.transitions import Observed
from watcher.sources.base import Kind

__all__ = [
    "HEADERS",
    "KINDS",
    "PAGE",
    "RUN",
    "RUN_TERMINAL",
    "SLOW_STATUSES",
    "STEP",
    "STEPS_FROZEN",
    "STEP_TERMINAL",
    "is_terminal",
    "parse_object",
    "run_succeeded",
]

RUN = "thread.run"
STEP = "thread.run.step"
RUN_TERMINAL = frozenset({"cancelled", "failed", "completed", "incomplete", "expired"})
STEP_TERMINAL = frozenset({"cancelled", "failed", "completed", "expired"})
#: Statuses that wait on something slow (the user's tool outputs): polled less often.
SLOW_STATUSES = frozenset({"requires_action"})
#: Every run status the API documents, in its order (others may come: not terminal).
RUN_STATUSES: tuple[str, ...] = ("queued", "in_progress", "requires_action", "cancelling")
RUN_STATUSES += ("cancelled", "failed", "completed", "incomplete", "expired")
#: Statuses in which no step can change until the run's own status does.
STEPS_FROZEN = frozenset({"queued", "requires_action"})
PAGE = 100
#: Only this source's requests carry it (the others' servers need no beta header).
HEADERS: Mapping[str, str] = {"OpenAI-Beta": "assistants=v2"}
KINDS = {
    RUN: Kind(
        object=RUN,
        statuses=RUN_STATUSES,
        terminal=RUN_TERMINAL,
        success=frozenset({"completed"}),
        slow=SLOW_STATUSES,
    ),
    STEP: Kind(
        object=STEP,
        statuses=("in_progress", "cancelled", "failed", "completed", "expired"),
        terminal=STEP_TERMINAL,
    ),
}


def is_terminal(kind: str, status: str) -> bool:
    """Unknown future statuses are not terminal: we keep watching rather than stop early."""
    return status in (RUN_TERMINAL if kind == RUN else STEP_TERMINAL)


def run_succeeded(status: str) -> bool:
    return status == "completed"


def parse_object(raw: Any, kind: str, thread_id: str, run_id: str | None) -> Observed | None:
    """An `Observed` if `raw` is a well-formed object of `kind`, else None (caller logs)."""
    if not isinstance(raw, dict):
        return None
    object_id, status = raw.get("id"), raw.get("status")
    if raw.get("object") != kind or not is_valid_id(object_id) or not isinstance(status, str):
        return None
    if not status or len(status) > 64:
        return None
    assert isinstance(object_id, str)
    return Observed(
        object_id=object_id,
        kind=kind,
        status=status,
        scope=thread_id,
        watch=object_id if kind == RUN else (run_id or ""),
        data=raw,
    )
