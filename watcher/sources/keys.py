"""Which object type a watch's store key names (`watcher.core.watch_keys` keeps the key's
format; the table of types is the sources'), and how a user reads the watch. No I/O."""

from __future__ import annotations

from watcher.core.watch_keys import SEP
from watcher.sources.kinds import TYPES, ObjectType

__all__ = ["describe", "split_key"]


def split_key(key: str) -> tuple[ObjectType | None, str]:
    """(its object type, its scope); (None, thread id) for the Assistants source."""
    if SEP not in key:
        return None, key
    name, _, scope = key.partition(SEP)
    return TYPES.get(name), scope


def describe(key: str, object_id: str | None) -> str:
    """A watch as a user reads it: `response resp_1`, `run run_1 of thread thread_1`,
    `file_batch vsfb_1 of vector store vs_1`."""
    if SEP not in key:
        return f"run {object_id} of thread {key}" if object_id else f"thread {key}"
    name, _, scope = key.partition(SEP)
    object_type = TYPES.get(name)
    if not object_id:  # as the config's `discover = "…"` names it
        listing = object_type.discover if object_type is not None else None
        return f'discovery of "{listing or name}"'
    parent = object_type.parent if object_type is not None else None
    where = f" of {parent.name if parent is not None else 'scope'} {scope}" if scope else ""
    return f"{name} {object_id}{where}"
