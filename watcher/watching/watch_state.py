"""What the daemon holds of each active watch, and the table of them that its parts share.

The registry adds and drops entries, the poller updates them; others read the table only
through its methods (`counts`, `last_poll`, `seen`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from watcher.core.transitions import ObjectState
from watcher.core.watch_keys import watch_path
from watcher.sources.base import Source

__all__ = ["RunOutcome", "RunState", "ThreadState", "WatchTable"]


@dataclass(slots=True)
class RunState:
    """A watch of one object (and its children): a run, keyed by (thread id, run id)."""

    thread_id: str
    run_id: str
    include: tuple[str, ...]
    cursor: str | None
    known: dict[str, ObjectState]
    delay: float
    last_change: float
    status: str | None = None
    last_poll: float | None = None  # unix time
    default_include: bool = False  # `include` is [poll] include's, which a reload may change
    polled_at: float | None = None  # monotonic, the last successful poll
    resume: str | None = None  # a listing cut at max_pages carries on from here
    paging_said: bool = False  # a cut listing is logged once per watch
    source: Source = field(kw_only=True)  # the key's: `sources.catalog.source_of`

    @property
    def path(self) -> tuple[str, ...]:
        """The ids the source's URL needs, outermost first: (thread, run); an object at the
        top of its API (a background response) has no scope, only its own id."""
        return watch_path(self.thread_id, self.run_id)

    @property
    def key(self) -> tuple[str, str]:
        return (self.thread_id, self.run_id)


@dataclass(slots=True)
class ThreadState:
    """A discovery watch: new objects under a parent (a thread's runs)."""

    thread_id: str
    include: tuple[str, ...] | None
    started_at: float
    listed: bool
    delay: float
    seen: set[str] = field(default_factory=set)
    last_poll: float | None = None
    resume: str | None = None  # older runs still to list (a listing cut at max_pages)
    paging_said: bool = False
    source: Source = field(kw_only=True)  # a thread's runs, the discovery of batches ("batch:")


@dataclass(slots=True)
class RunOutcome:
    """How a watched run ended, for `watch --exit-status`."""

    status: str | None = None
    error: str | None = None
    exit_code: int = 0


class WatchTable:
    """The active watches in memory, by key: runs by (thread id, run id), threads by id."""

    def __init__(self) -> None:
        self.runs: dict[tuple[str, str], RunState] = {}
        self.threads: dict[str, ThreadState] = {}

    def counts(self) -> dict[str, int]:
        """How many watches are active, by shape (`/status`, the gauges, STATUS=)."""
        return {"runs": len(self.runs), "threads": len(self.threads)}

    def last_poll(self) -> float | None:
        """When a run was last polled (unix time), if one was."""
        polled = [r.last_poll for r in self.runs.values() if r.last_poll]
        return max(polled) if polled else None

    def seen(self, thread_id: str, run_id: str | None) -> tuple[str | None, float | None]:
        """A watch's last status and last poll (unix time), as far as they are known."""
        if run_id:
            run = self.runs.get((thread_id, run_id))
            return (run.status, run.last_poll) if run else (None, None)
        thread = self.threads.get(thread_id)
        return (None, thread.last_poll) if thread else (None, None)
