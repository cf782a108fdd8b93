"""The control API's watches of any source: a POST body made a store key, a DELETE path
made one, and a listed watch shown with its source's own names. No I/O.

`POST /v1/watches` takes a `[[watch]]` entry's keys (`{"response_id": …}`,
`{"batch_id": …}`, `{"vector_store_id": …, "file_batch_id": …}`,
`{"discover": "batches"}`, and today's `{"thread_id": …[, "run_id": …]}`);
`DELETE /v1/watches/{kind}/{id}` (`response`, `batch`, `fine_tuning_job`),
`/v1/watches/file_batch/{vector_store_id}/{id}`, `/v1/watches/discover/{list}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from watcher.config.watch_spec import WATCH_KINDS, WatchSpec
from watcher.core.ids import is_valid_id
from watcher.core.watch_keys import object_key
from watcher.sources.keys import split_key
from watcher.sources.kinds import DISCOVERABLE, TYPES

__all__ = ["BODY_KEYS", "BodyError", "delete_key", "parse_body", "shown"]

#: A body's keys: those that name a watch, a run's, and the parent ids objects live under.
BODY_KEYS = (
    frozenset(WATCH_KINDS)
    | {"run_id"}
    | {t.parent.key for t in TYPES.values() if t.parent is not None}
)
Key = tuple[str, str | None]


class BodyError(ValueError):
    def __init__(self, message: str, field: str | None) -> None:
        super().__init__(message)
        self.field = field


def parse_body(body: Mapping[str, Any]) -> Key:
    """The store key of the watch a POST body asks for; `BodyError` names a bad field."""
    unknown = set(body) - BODY_KEYS
    if unknown:
        field = sorted(unknown)[0]
        raise BodyError(f"unknown field {field!r}", field)
    try:
        return WatchSpec.model_validate(dict(body)).key
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"]]
        msg = str(err["msg"]).removeprefix("Value error, ")
        if not loc and ": " in msg:  # the entry's own check names its field first
            field, _, msg = msg.partition(": ")
            return _raise(field, msg)
        return _raise(loc[0] if loc else None, msg)


def _raise(field: str | None, msg: str) -> Key:
    raise BodyError(f"{field}: {msg}" if field else msg, field)


def delete_key(kind: str, *ids: str) -> Key | None:
    """The key `DELETE /v1/watches/{kind}/…` names, or None if `kind` is no source's."""
    if kind == "discover" and len(ids) == 1 and ids[0] in DISCOVERABLE:
        return object_key(DISCOVERABLE[ids[0]]), None
    if kind not in TYPES or not all(is_valid_id(i) for i in ids):
        return None
    if TYPES[kind].parent is not None:  # /file_batch/{vector_store_id}/{id}
        return (object_key(kind, ids[0]), ids[1]) if len(ids) == 2 else None
    return (object_key(kind), ids[0]) if len(ids) == 1 else None


def shown(watch: dict[str, object]) -> dict[str, object]:
    """A listed watch with its source's names: `{"kind": "response", "id": "resp_1", …}`
    (an Assistants watch keeps `thread_id` and `run_id`)."""
    key = str(watch.get("thread_id") or "")
    object_type, scope = split_key(key)
    if object_type is None:
        return watch
    out = {k: v for k, v in watch.items() if k not in ("thread_id", "run_id")}
    out["kind"] = object_type.name
    if watch.get("run_id"):
        out["id"] = watch["run_id"]
    else:
        out["discover"] = next(k for k, v in DISCOVERABLE.items() if v == object_type.name)
    if scope and object_type.parent is not None:
        out[object_type.parent.key] = scope
    return out
