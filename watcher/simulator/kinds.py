"""The long-running object kinds beside Assistants runs, as OpenAI's spec names them: pure data.

For each kind: the `object` name its answers carry, its statuses (in spec order), which end
it, which one is success, the prefix OpenAI writes its ids with, and the scenario key that
scripts it. Built from the watcher's own table (`watcher.sources.kinds`): what the
simulator serves and what the watcher expects cannot drift. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from watcher.sources import kinds as source

__all__ = [
    "BATCH",
    "FILE_BATCH",
    "FINE_TUNING_JOB",
    "KINDS",
    "RESPONSE",
    "ROUTES",
    "Kind",
    "kind_of_id",
]


@dataclass(frozen=True, slots=True)
class Kind:
    name: str  # as `watch --kind` spells it
    object: str  # the answers' `object`
    statuses: tuple[str, ...]
    terminal: frozenset[str]
    success: str
    id_prefix: str
    scenario_key: str  # the scenario JSON's list of these objects


def _of(t: source.ObjectType, scenario_key: str) -> Kind:
    [success] = t.kind.success
    return Kind(
        name=t.name,
        object=t.kind.object,
        statuses=t.kind.statuses,
        terminal=t.kind.terminal,
        success=success,
        id_prefix=t.id_prefix,
        scenario_key=scenario_key,
    )


RESPONSE = _of(source.RESPONSE, "responses")
BATCH = _of(source.BATCH, "batches")
FINE_TUNING_JOB = _of(source.FINE_TUNING_JOB, "fine_tuning_jobs")
FILE_BATCH = _of(source.FILE_BATCH, "file_batches")
KINDS = {k.name: k for k in (RESPONSE, BATCH, FINE_TUNING_JOB, FILE_BATCH)}
#: the simulator's route names for these (faults' `match`, stats' `by_route`)
ROUTES = ("response", "batches", "batch", "fine_tuning_jobs", "fine_tuning_job", "file_batch")


def kind_of_id(object_id: str) -> Kind | None:
    """The kind whose prefix `object_id` starts with (`resp_`, `batch_`, `ftjob-`, `vsfb_`)."""
    return next((k for k in KINDS.values() if object_id.startswith(k.id_prefix)), None)
