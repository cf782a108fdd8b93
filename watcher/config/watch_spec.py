"""A `[[watch]]` entry: which object (or list) a watch follows, and its store key."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from watcher.config.section import RunId, _Section
from watcher.core.watch_keys import object_key
from watcher.sources.kinds import DISCOVERABLE, TYPES

__all__ = ["WATCH_KINDS", "WatchSpec"]


#: A [[watch]] entry's kinds: the keys that name one, each with those it needs beside it.
#: `<type>_id` watches one object of that type (`watcher.sources.kinds.TYPES`).
WATCH_KINDS = {
    "thread_id": (),
    "response_id": (),
    "batch_id": (),
    "fine_tuning_job_id": (),
    "file_batch_id": ("vector_store_id",),
    "discover": (),
}


class WatchSpec(_Section):
    """One watch: a run (`thread_id` + `run_id`), a thread's new runs (`thread_id`), a
    response, a batch, a fine-tuning job, a file batch (`vector_store_id` +
    `file_batch_id`), or the discovery of batches or fine-tuning jobs (`discover`)."""

    thread_id: RunId = None
    run_id: RunId = None
    response_id: RunId = None
    batch_id: RunId = None
    fine_tuning_job_id: RunId = None
    vector_store_id: RunId = None
    file_batch_id: RunId = None
    discover: Literal["batches", "fine_tuning.jobs"] | None = None
    include: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> WatchSpec:
        kinds = [k for k in WATCH_KINDS if getattr(self, k) is not None]
        if not kinds:
            others = [" + ".join((*needs, k)) for k, needs in WATCH_KINDS.items()]
            raise ValueError(f"thread_id: required (or one of {', '.join(others[1:])})")
        if len(kinds) > 1:
            raise ValueError(f"{kinds[1]}: cannot be combined with {kinds[0]} (one kind a watch)")
        kind = kinds[0]
        for need in WATCH_KINDS[kind]:
            if getattr(self, need) is None:
                raise ValueError(f"{need}: required with {kind}")
        if self.run_id is not None and kind != "thread_id":
            raise ValueError(f"run_id: only with thread_id, not with {kind}")
        if self.vector_store_id is not None and kind != "file_batch_id":
            raise ValueError(f"vector_store_id: only with file_batch_id, not with {kind}")
        if self.include is not None and kind != "thread_id":
            raise ValueError(f"include: only for Assistants watches, not with {kind}")
        return self

    @property
    def key(self) -> tuple[str, str | None]:
        """The store's key of this watch (`watcher.core.watch_keys`): (scope key, object id or
        None for a discovery watch)."""
        if self.thread_id is not None:
            return self.thread_id, self.run_id
        if self.discover is not None:
            return object_key(DISCOVERABLE[self.discover]), None
        for kind in WATCH_KINDS:  # `<type>_id`: one object of a type in `sources.kinds`
            name = kind.removesuffix("_id")
            if name in TYPES and (object_id := getattr(self, kind)) is not None:
                parent = TYPES[name].parent  # a file batch's vector store: its scope
                scope = getattr(self, parent.key) if parent is not None else ""
                return object_key(name, scope), object_id
        raise AssertionError("validated: one kind")  # pragma: no cover
