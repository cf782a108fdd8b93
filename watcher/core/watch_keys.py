"""How a watch of any source is keyed in the store: (scope key, object id).

The store keys watches by two strings, written `(thread_id, run_id)` since the Assistants
API was the only source. Other sources fit the same two columns: the first holds
`"<type>:<scope>"` (`"response:"`, `"file_batch:vs_1"`, `"batch:"` for the discovery of
batches), the second the object's id. IDs never hold `:`, so an Assistants thread id (the
first column with no `:`) and these keys cannot meet; a configured batch and the same
batch found by a discovery watch share one row (`("batch:", "batch_1")`): one object, one
event per status. No I/O, and no source's table: which object type a key names, and how a
user reads it, are `watcher.sources.keys`' answers (`split_key`, `describe`).
"""

from __future__ import annotations

__all__ = ["SEP", "object_key", "watch_path"]

SEP = ":"


def object_key(type_name: str, scope: str = "") -> str:
    """The first half of the key of a watch of `type_name` objects (under `scope`)."""
    return f"{type_name}{SEP}{scope}"


def watch_path(key: str, object_id: str) -> tuple[str, ...]:
    """The ids the source's URL needs, outermost first."""
    scope = key.partition(SEP)[2] if SEP in key else key
    return (scope, object_id) if scope else (object_id,)
