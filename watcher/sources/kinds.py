"""Object kinds (what each status means), and today's long-running OpenAI objects as pure
data: background responses, batches, fine-tuning jobs, vector-store file batches.

For each of those: the name `watch --kind` spells, its `Kind` (the `object` its answers
carry, its statuses in the spec's order, which end it, which one is success), the prefix
OpenAI writes its ids with, where to GET one (`{}` marks each id of a watch's path,
outermost first), the list to discover them from, if there is one, with the `discover =
"…"` value that names it, and the object it lives under, if any (its `Parent`). The
simulator builds its table from this one: the two cannot drift. No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BATCH",
    "DISCOVERABLE",
    "FILE_BATCH",
    "FINE_TUNING_JOB",
    "RESPONSE",
    "TYPES",
    "Kind",
    "ObjectType",
    "Parent",
    "type_of_id",
]


@dataclass(frozen=True, slots=True)
class Kind:
    """One object kind as its API names it (`object`), and what its statuses mean.

    A status not listed (a newer API's) is not terminal: the watch goes on rather than stop
    early.
    """

    object: str
    statuses: tuple[str, ...]
    terminal: frozenset[str]
    success: frozenset[str] = frozenset()  # terminal statuses that `watch` exits 0 on
    slow: frozenset[str] = frozenset()  # statuses that wait on something slow: polled less

    def is_terminal(self, status: str) -> bool:
        return status in self.terminal

    def succeeded(self, status: str) -> bool:
        return status in self.success


@dataclass(frozen=True, slots=True)
class Parent:
    """The object a type lives under, whose id comes first in its path (a file batch's
    vector store): a watch of it takes two ids."""

    name: str  # as a user reads it: "vector store"
    key: str  # its id's key in a `[[watch]]` entry and a `POST /v1/watches` body
    flag: str  # `watch ID` takes its id with this option
    metavar: str  # and shows it so in `--help`


@dataclass(frozen=True, slots=True)
class ObjectType:
    name: str  # as `watch --kind` spells it
    kind: Kind
    id_prefix: str
    path: tuple[str, ...]  # GET's segments; "{}" where the path's ids go, in order
    listing: tuple[str, ...] | None = None  # the list to discover from, newest first
    discover: str | None = None  # the `discover = "…"` value of a watch of that list
    #: how far back a discovery watch's first listing looks for one still active (seconds)
    lookback: float = 3600.0
    parent: Parent | None = None  # the object it lives under, if it has one
    #: other `object` names a server may give it (events are named as the server names it)
    also_named: frozenset[str] = frozenset()

    @property
    def label(self) -> str:
        """As a user reads it: "file batch"."""
        return self.name.replace("_", " ")


def _kind(object: str, statuses: tuple[str, ...], terminal: set[str], success: str) -> Kind:
    return Kind(object, statuses, frozenset(terminal), success=frozenset({success}))


RESPONSE = ObjectType(
    name="response",
    kind=_kind(
        "response",
        ("queued", "in_progress", "completed", "failed", "cancelled", "incomplete"),
        {"completed", "failed", "cancelled", "incomplete"},
        "completed",
    ),
    id_prefix="resp_",
    path=("responses", "{}"),
)
BATCH = ObjectType(
    name="batch",
    kind=_kind(
        "batch",
        (
            "validating",
            "in_progress",
            "finalizing",
            "completed",
            "failed",
            "expired",
            "cancelling",
            "cancelled",
        ),
        {"completed", "failed", "expired", "cancelled"},
        "completed",
    ),
    id_prefix="batch_",
    path=("batches", "{}"),
    listing=("batches",),
    discover="batches",
    lookback=2 * 86400.0,  # a 24 h completion window, then finalizing
)
FINE_TUNING_JOB = ObjectType(
    name="fine_tuning_job",
    kind=_kind(
        "fine_tuning.job",
        ("validating_files", "queued", "running", "succeeded", "failed", "cancelled"),
        {"succeeded", "failed", "cancelled"},
        "succeeded",
    ),
    id_prefix="ftjob-",
    path=("fine_tuning", "jobs", "{}"),
    listing=("fine_tuning", "jobs"),
    discover="fine_tuning.jobs",
    lookback=7 * 86400.0,  # queued behind others, then hours or days of training
)
FILE_BATCH = ObjectType(
    name="file_batch",
    kind=_kind(
        "vector_store.files_batch",
        ("in_progress", "completed", "cancelled", "failed"),
        {"completed", "cancelled", "failed"},
        "completed",
    ),
    id_prefix="vsfb_",
    path=("vector_stores", "{}", "file_batches", "{}"),
    parent=Parent("vector store", key="vector_store_id", flag="--vector-store", metavar="VS_ID"),
    # the spec's enum says `files_batch`; its description and its GET's example, `file_batch`
    also_named=frozenset({"vector_store.file_batch"}),
)
TYPES = {t.name: t for t in (RESPONSE, BATCH, FINE_TUNING_JOB, FILE_BATCH)}
#: `discover = "…"` values and the object type each lists.
DISCOVERABLE = {t.discover: t.name for t in TYPES.values() if t.discover is not None}


def type_of_id(object_id: str) -> ObjectType | None:
    """The type whose prefix `object_id` starts with (`resp_`, `batch_`, `ftjob-`, `vsfb_`)."""
    return next((t for t in TYPES.values() if object_id.startswith(t.id_prefix)), None)
