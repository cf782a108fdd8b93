"""What a source offers the core: its object kinds, its headers, how a watch of it is polled.

As small as httpx's `AsyncBaseTransport`: a source is a module-level object with a name,
the kinds it reports, the headers its requests need, and two coroutines that turn the API's
answers into plain observations. Three shapes of watch fit it:

- one object (`observe` with a one-id path, no children: a background response, a batch);
- a parent with children (`observe` lists the children after a tail `cursor`: a run and
  its steps);
- a list to discover from (`discover` under a parent, or at the top with `parent=None`:
  a thread's runs, the batches of an account).

A watch is keyed by (source name, path): `path` is the ids that locate the watched object
in the API's URLs, outermost first (`("thread_1", "run_1")`, `("resp_1",)`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from watcher.api.client import ApiClient
from watcher.core.transitions import Observed
from watcher.sources.kinds import Kind

__all__ = ["MAX_PAGES", "Discovery", "Kind", "Observation", "Source"]  # Kind: from .kinds

#: Pages one poll may list (`[poll] max_pages`): a list that never ends is cut there.
MAX_PAGES = 10


@dataclass(slots=True)
class Observation:
    """One poll of one watched object: objects in the order their events should go out."""

    objects: list[Observed]
    status: str  # the watched object's own status
    cursor: str | None  # children up to here are terminal: the next listing starts after it
    done: bool  # the object and every child are terminal: the watch ends
    poll_after: float | None  # the server's hint (seconds), if it gave one
    resume: str | None = None  # where the next poll's listing carries on (a cut listing)
    problem: str | None = None  # why the listing stopped before the list's end

    @property
    def run_status(self) -> str:  # the Assistants name, kept for callers that use it
        return self.status


@dataclass(slots=True)
class Discovery:
    """Objects a discovery watch should start watching, and those it leaves alone."""

    new: list[str] = field(default_factory=list)  # oldest first
    ignored: list[str] = field(default_factory=list)  # finished before the watch began
    resume: str | None = None  # older objects still to list: where the next poll carries on
    problem: str | None = None  # why a listing stopped before the list's end

    @property
    def new_runs(self) -> list[str]:  # the Assistants name, kept for callers that use it
        return self.new


class Source(Protocol):
    """One API of long-running objects, as the core sees it."""

    name: str  # the key's first half, e.g. "assistants"
    kinds: Mapping[str, Kind]  # by `object`, e.g. "thread.run"
    root: str  # the kind a watch follows (its outcome decides `watch --exit-status`)
    headers: Mapping[str, str]  # sent with every request of this source
    #: What a 404 says when no call to the base URL has succeeded yet: that this API is not
    #: served there (`{base_url}` where the URL goes, masked); logged once. None: such a 404
    #: names the object alone, like any other.
    no_api_message: str | None
    #: A seen object may later answer 404 (the API keeps it only for a while, as a
    #: background response): its watch ends as gone (a warning, `watches_gone`), not as an
    #: error.
    objects_expire: bool

    async def observe(
        self,
        client: ApiClient,
        path: Sequence[str],
        *,
        cursor: str | None,
        include: Sequence[str],
        previous_status: str | None,
        resume: str | None,
        max_pages: int,
    ) -> Observation:
        """GET the object at `path` (and list its children after `cursor`, if it has any)."""
        ...

    async def discover(
        self,
        client: ApiClient,
        parent: str | None,
        *,
        seen: set[str],
        first: bool,
        started_at: float,
        resume: str | None,
        max_pages: int,
    ) -> Discovery:
        """List objects (under `parent`) newest first, down to one already `seen`."""
        ...
