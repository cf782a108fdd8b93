"""A source whose watch follows one object (`GET /responses/{id}`, `GET /batches/{id}`, …),
and discovers them from their list where there is one (`GET /batches`).

One class for every `watcher.sources.kinds.ObjectType`: a new object type of this shape is
a row of that table, not code. No `OpenAI-Beta` header: these APIs need none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from watcher.api.client import ApiClient
from watcher.core.errors import BadResponseError
from watcher.core.ids import is_valid_id
from watcher.core.transitions import Observed
from watcher.sources.base import Discovery, Kind, Observation
from watcher.sources.discovery import Listing, discover
from watcher.sources.kinds import TYPES, ObjectType

__all__ = ["SOURCES", "ObjectSource"]

log = structlog.get_logger("watcher.sources")

PAGE = 100


class ObjectSource:
    """`Source` for one object type: a watch's path is the ids its URL needs, the object's
    own last (`("resp_1",)`, `("vs_1", "vsfb_1")`)."""

    headers: Mapping[str, str] = {}
    no_api_message: str | None = None  # a 404 is about the object
    objects_expire = True  # a background response is stored only for a while

    def __init__(self, object_type: ObjectType) -> None:
        self.type = object_type
        self.name = object_type.name
        self.root = object_type.kind.object
        self.names = {self.root, *object_type.also_named}
        self.kinds: Mapping[str, Kind] = dict.fromkeys(self.names, object_type.kind)

    def parse(self, raw: Any, scope: str) -> Observed | None:
        """An `Observed` if `raw` is a well-formed object of this type, else None."""
        if not isinstance(raw, dict):
            return None
        object_id, status, name = raw.get("id"), raw.get("status"), raw.get("object")
        if name not in self.names or not is_valid_id(object_id):
            return None
        if not isinstance(status, str) or not status or len(status) > 64:
            return None
        assert isinstance(object_id, str) and isinstance(name, str)
        # the kind as the server names it: an event's type is `data.object + "." + status`
        return Observed(object_id, name, status, scope, object_id, raw)

    async def observe(
        self,
        client: ApiClient,
        path: Sequence[str],
        *,
        cursor: str | None = None,
        include: Sequence[str] = (),
        previous_status: str | None = None,
        resume: str | None = None,
        max_pages: int = 0,
    ) -> Observation:
        """GET the object; it has no children, so no cursor, no listing."""
        ids = iter(path)
        segments = [next(ids) if s == "{}" else s for s in self.type.path]
        response = await client.get(segments, headers=self.headers)
        body = response.body
        obj = self.parse(body, path[0] if len(path) > 1 else "")
        if obj is None and _no_status_yet(body, self.names, path[-1]):
            # the spec lets a response's `status` be null: nothing to report yet
            status = previous_status or ""
            return Observation([], status, None, False, response.poll_after)
        if obj is None or obj.object_id != path[-1]:
            raise BadResponseError(f"{self.name} {path[-1]}: the response is not a {self.root}")
        return Observation(
            objects=[obj],
            status=obj.status,
            cursor=None,
            # a terminal status is confirmed by one more poll before the watch ends: a
            # status after a "terminal" one (Azure's cancelled response that completes) is
            # reported, not lost
            done=self.type.kind.is_terminal(obj.status) and previous_status == obj.status,
            poll_after=response.poll_after,
        )

    async def discover(
        self,
        client: ApiClient,
        parent: str | None,
        *,
        seen: set[str],
        first: bool,
        started_at: float,
        resume: str | None,
        max_pages: int,
    ) -> Discovery:
        """The list's new objects (batches, fine-tuning jobs: newest first, `after`)."""
        if self.type.listing is None:
            raise TypeError(f"{self.name} objects have no list to discover them from")
        listing = Listing(
            segments=self.type.listing,
            what="/".join(self.type.listing),
            params=(("limit", str(PAGE)),),
            headers=self.headers,
            parse=lambda raw: self.parse(raw, ""),
            is_terminal=self.type.kind.is_terminal,
            on_malformed=lambda: log.warning(f"malformed {self.name} skipped"),
            lookback=self.type.lookback,
        )
        return await discover(
            client,
            listing,
            seen=seen,
            first=first,
            started_at=started_at,
            resume=resume,
            max_pages=max_pages,
        )


def _no_status_yet(raw: Any, names: set[str], object_id: str) -> bool:
    """The object asked for, of this type, whose `status` is null or absent."""
    return (
        isinstance(raw, dict)
        and raw.get("object") in names
        and raw.get("id") == object_id
        and raw.get("status") is None
    )


SOURCES = {name: ObjectSource(t) for name, t in TYPES.items()}
