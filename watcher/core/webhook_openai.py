"""`[webhook] format = "openai"`: the body OpenAI's own webhooks carry, for the types it sends.

OpenAI's webhook event is thin: `{"id", "object": "event", "type", "created_at",
"data": {"id"}}` (the spec's `webhooks:` section; the receiver fetches the object itself).
It is sent only for the terminal types OpenAI sends; any other event (run steps, runs,
non-terminal statuses, file batches) has no OpenAI counterpart and is not sent in this
format. The event id, `type` and `created_at` are those of our event line, so a
redelivery carries the same id in both formats.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Literal

__all__ = ["OPENAI_EVENT_TYPES", "Formatter", "formatter", "openai_body", "sends"]

#: Every event type OpenAI sends by webhook for the objects this daemon watches.
OPENAI_EVENT_TYPES = frozenset(
    {
        "response.completed",
        "response.failed",
        "response.cancelled",
        "response.incomplete",
        "batch.completed",
        "batch.failed",
        "batch.expired",
        "batch.cancelled",
        "fine_tuning.job.succeeded",
        "fine_tuning.job.failed",
        "fine_tuning.job.cancelled",
    }
)

#: (event type, stored event line) → the body to POST, or None: not sent in this format.
Formatter = Callable[[str, str], str | None]


def openai_body(event_type: str, line: str) -> str | None:
    """OpenAI's webhook event made from our stored event line; None for another type."""
    if event_type not in OPENAI_EVENT_TYPES:
        return None
    event = json.loads(line)
    data = event.get("data")
    object_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(object_id, str):
        return None  # not an object OpenAI could name: nothing to send
    body = {
        "id": event["id"],
        "object": "event",
        "type": event_type,
        "created_at": event["created_at"],
        "data": {"id": object_id},
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def _ours(event_type: str, line: str) -> str:
    return line  # exactly the line printed on stdout


def sends(name: Literal["runstep-watcher", "openai"], event_type: str) -> bool:
    """Whether format `name` sends events of this type (cheap: the type alone)."""
    return name != "openai" or event_type in OPENAI_EVENT_TYPES


def formatter(name: Literal["runstep-watcher", "openai"]) -> Formatter:
    """The body maker for `[webhook] format`."""
    return openai_body if name == "openai" else _ours
