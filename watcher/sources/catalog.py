"""Every source the daemon knows, and which one a watch's store key names.

A key's object type comes from `keys.split_key`: a type of `kinds.TYPES` is polled by its
`single.ObjectSource`; a key with no type (the first column with no `:`, a thread id, as
the store has written them since the Assistants API was the only source) is the
Assistants source's. A source of another shape (its own `Source` class) gets its line here.
"""

from __future__ import annotations

from watcher.sources.assistants import ASSISTANTS
from watcher.sources.base import Source
from watcher.sources.keys import split_key
from watcher.sources.single import SOURCES

__all__ = ["source_of"]


def source_of(key: str) -> Source:
    """The source a watch's scope key names (`watcher.core.watch_keys`)."""
    object_type, _scope = split_key(key)
    return ASSISTANTS if object_type is None else SOURCES[object_type.name]
