"""The event envelope: what goes to stdout and to webhooks, one per observed transition."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

__all__ = ["Event", "event_id", "event_type"]


def event_id(object_id: str, status: str) -> str:
    """A pure function of (object id, status): a redelivery carries the same id."""
    digest = hashlib.sha256(f"{object_id}\x1f{status}".encode()).hexdigest()
    return f"evt_{digest[:32]}"


def event_type(kind: str, status: str) -> str:
    """`thread.run.step` + `completed` → `thread.run.step.completed` (OpenAI's stream names)."""
    return f"{kind}.{status}"


@dataclass(frozen=True, slots=True)
class Event:
    """One transition of one object, with the object exactly as the API returned it."""

    id: str
    type: str
    created_at: int
    data: dict[str, Any]
    previous_status: str | None
    thread_id: str
    run_id: str

    def envelope(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "event",
            "type": self.type,
            "created_at": self.created_at,
            "data": self.data,
            "previous_status": self.previous_status,
        }

    def to_json(self) -> str:
        # strict: NaN and Infinity are not JSON (the client refuses them in API answers)
        return json.dumps(
            self.envelope(), separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
