"""The long-running object kinds beside Assistants runs, as OpenAI's spec names them: pure data.

For each kind: the `object` name its answers carry, its statuses (in spec order), which end
it, which one is success, the prefix OpenAI writes its ids with, and the scenario key that
scripts it. The watcher's sources may mirror this table; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

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


RESPONSE = Kind(
    name="response",
    object="response",
    statuses=("queued", "in_progress", "completed", "failed", "cancelled", "incomplete"),
    terminal=frozenset({"completed", "failed", "cancelled", "incomplete"}),
    success="completed",
    id_prefix="resp_",
    scenario_key="responses",
)
BATCH = Kind(
    name="batch",
    object="batch",
    statuses=(
        "validating",
        "in_progress",
        "finalizing",
        "completed",
        "failed",
        "expired",
        "cancelling",
        "cancelled",
    ),
    terminal=frozenset({"completed", "failed", "expired", "cancelled"}),
    success="completed",
    id_prefix="batch_",
    scenario_key="batches",
)
FINE_TUNING_JOB = Kind(
    name="fine_tuning_job",
    object="fine_tuning.job",
    statuses=("validating_files", "queued", "running", "succeeded", "failed", "cancelled"),
    terminal=frozenset({"succeeded", "failed", "cancelled"}),
    success="succeeded",
    id_prefix="ftjob-",
    scenario_key="fine_tuning_jobs",
)
FILE_BATCH = Kind(
    name="file_batch",
    object="vector_store.files_batch",
    statuses=("in_progress", "completed", "cancelled", "failed"),
    terminal=frozenset({"completed", "cancelled", "failed"}),
    success="completed",
    id_prefix="vsfb_",
    scenario_key="file_batches",
)
KINDS = {k.name: k for k in (RESPONSE, BATCH, FINE_TUNING_JOB, FILE_BATCH)}
#: the simulator's route names for these (faults' `match`, stats' `by_route`)
ROUTES = ("response", "batches", "batch", "fine_tuning_jobs", "fine_tuning_job", "file_batch")


def kind_of_id(object_id: str) -> Kind | None:
    """The kind whose prefix `object_id` starts with (`resp_`, `batch_`, `ftjob-`, `vsfb_`)."""
    return next((k for k in KINDS.values() if object_id.startswith(k.id_prefix)), None)
