"""Which object type a watch's store key names (`watcher.core.watch_keys` keeps the key's
format; the table of types is the sources'). No I/O."""

from __future__ import annotations

from watcher.core.watch_keys import SEP
from watcher.sources.kinds import TYPES, ObjectType

__all__ = ["split_key"]


def split_key(key: str) -> tuple[ObjectType | None, str]:
    """(its object type, its scope); (None, thread id) for the Assistants source."""
    if SEP not in key:
        return None, key
    name, _, scope = key.partition(SEP)
    return TYPES.get(name), scope
