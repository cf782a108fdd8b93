"""`runstep-watcher watch ID…`: which watch the ids on the command line name.

- `watch THREAD_ID RUN_ID`: an Assistants run, as always;
- `watch ID`: the source from the id's prefix (`resp_`, `batch_`, `ftjob-`), or `--kind`
  where a server's ids differ;
- an object under a parent (`ObjectType.parent`: a file batch under its vector store)
  also needs the parent's id: `watch VS_ID VSFB_ID` (the second id's prefix says what it
  is, or `--kind file_batch`), or `watch VSFB_ID --vector-store VS_ID` (the parent's flag).

The answer is a `[[watch]]` entry, validated like the config's. No I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from watcher.sources.kinds import TYPES, ObjectType, type_of_id

__all__ = ["KINDS", "UNDER", "TargetError", "watch_entry"]

KINDS = tuple(TYPES)  # --kind's choices: response, batch, fine_tuning_job, file_batch
#: The types that live under a parent, by the flag that gives the parent's id.
UNDER = {t.parent.flag: t for t in TYPES.values() if t.parent is not None}


#: "one ID (resp_…, batch_…, ftjob-…), or VS_ID VSFB_ID": what `watch` takes, from the rows
_GIVE = (
    "one ID ("
    + ", ".join(f"{t.id_prefix}…" for t in TYPES.values() if t.parent is None)
    + ")"
    + "".join(
        f", or {t.parent.metavar} {t.id_prefix.rstrip('_-').upper()}_ID"
        for t in TYPES.values()
        if t.parent is not None
    )
)


class TargetError(ValueError):
    """The ids do not name one watch (a usage error)."""


def watch_entry(
    ids: Sequence[str], *, kind: str | None = None, parent: str | None = None
) -> dict[str, str]:
    """The `[[watch]]` entry (keys as the config's) that `watch IDS…` follows; `parent` is
    the id given with a parent's flag (`--vector-store`)."""
    if not 1 <= len(ids) <= 2:
        raise TargetError(f"watch: give THREAD_ID RUN_ID, {_GIVE}")
    if len(ids) == 2:
        scope, object_id = ids
        under = TYPES[kind] if kind is not None else type_of_id(object_id)
        if under is not None and under.parent is not None:
            return _under(under, scope, object_id)
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
    if found.parent is not None:
        if parent is None:
            needs = f"{found.parent.flag} {found.parent.metavar}"
            raise TargetError(f"watch {object_id}: a {found.label} needs {needs}")
        return _under(found, parent, object_id)
    if parent is not None:
        only = " or ".join(t.label for t in UNDER.values())
        raise TargetError(f"{'/'.join(UNDER)}: only for a {only}")
    return {f"{found.name}_id": object_id}


def _under(found: ObjectType, parent: str, object_id: str) -> dict[str, str]:
    assert found.parent is not None
    return {found.parent.key: parent, f"{found.name}_id": object_id}
