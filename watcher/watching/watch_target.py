"""`runstep-watcher watch ID…`: which watch the ids on the command line name.

- `watch THREAD_ID RUN_ID`: an Assistants run, as always;
- `watch ID`: the source from the id's prefix (`resp_`, `batch_`, `ftjob-`), or `--kind`
  where a server's ids differ;
- a file batch also needs its vector store: `watch VS_ID VSFB_ID` (the second id starts
  with `vsfb_`, or `--kind file_batch`), or `watch VSFB_ID --vector-store VS_ID`.

The answer is a `[[watch]]` entry, validated like the config's. No I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from watcher.sources.kinds import FILE_BATCH, TYPES, type_of_id

__all__ = ["KINDS", "TargetError", "watch_entry"]

KINDS = tuple(TYPES)  # --kind's choices: response, batch, fine_tuning_job, file_batch


class TargetError(ValueError):
    """The ids do not name one watch (a usage error)."""


def watch_entry(
    ids: Sequence[str], *, kind: str | None = None, vector_store: str | None = None
) -> dict[str, str]:
    """The `[[watch]]` entry (keys as the config's) that `watch IDS…` follows."""
    if not 1 <= len(ids) <= 2:
        raise TargetError("watch: give THREAD_ID RUN_ID, or one ID (resp_…, batch_…, ftjob-…)")
    if len(ids) == 2:
        scope, object_id = ids
        if kind == FILE_BATCH.name or (kind is None and object_id.startswith("vsfb_")):
            return {"vector_store_id": scope, "file_batch_id": object_id}
        if kind is not None:
            raise TargetError(f"--kind {kind}: takes one ID, not two")
        return {"thread_id": scope, "run_id": object_id}
    [object_id] = ids
    found = TYPES[kind] if kind is not None else type_of_id(object_id)
    if found is None:
        raise TargetError(
            f"watch: cannot tell what {object_id!r} is from its prefix; give --kind "
            + "|".join(KINDS)
            + " (or THREAD_ID RUN_ID for a run)"
        )
    if found is FILE_BATCH:
        if vector_store is None:
            raise TargetError(f"watch {object_id}: a file batch needs --vector-store VS_ID")
        return {"vector_store_id": vector_store, "file_batch_id": object_id}
    if vector_store is not None:
        raise TargetError("--vector-store: only for a file batch")
    return {f"{found.name}_id": object_id}
