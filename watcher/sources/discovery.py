"""Discovery from a list, newest first, for any source: a thread's runs, the batches.

A discovery watch reports objects created after it began and those still active when
first listed, never the ones already finished; it pages only as far as it must (down to an
object already seen, or the lookback on the first listing), at most `max_pages` pages.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from watcher.api.client import ApiClient
from watcher.api.paging import PageBudget, pages
from watcher.core.transitions import Observed
from watcher.sources.base import MAX_PAGES, Discovery

__all__ = ["LOOKBACK_SECONDS", "Listing", "discover"]

#: A discovery watch's first listing looks back this far for objects still active (a
#: listing may say farther: a batch runs for up to a day).
LOOKBACK_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class Listing:
    """A list to discover objects from, newest first: where it is and how to read it."""

    segments: tuple[str, ...]
    what: str  # for messages: "thread thread_1 runs"
    params: tuple[tuple[str, str], ...]
    headers: Mapping[str, str]
    parse: Callable[[Any], Observed | None]  # None: malformed (skipped, `on_malformed`)
    is_terminal: Callable[[str], bool]
    on_malformed: Callable[[], None]
    lookback: float = LOOKBACK_SECONDS  # the first listing's, for objects still active


async def discover(
    client: ApiClient,
    listing: Listing,
    *,
    seen: set[str],
    first: bool,
    started_at: float,
    resume: str | None = None,
    max_pages: int = MAX_PAGES,
) -> Discovery:
    """List newest first, until an object already seen.

    On the first listing of a watch, objects that had already finished before the watch
    began are ignored (remembered as seen, never reported); active ones are watched.

    At most `max_pages` pages: the newest objects first; then, with the pages left, the
    older ones from `resume`, where a listing cut short before ended (under the first
    listing's rules, which it continues).
    """
    found = Discovery(resume=resume)
    budget = PageBudget(max_pages)
    ended = await _list(client, listing, None, budget, found, seen, first, started_at)
    if not ended:
        found.resume = budget.resume  # newer objects first: an older backlog waits its turn
    elif resume is not None and not budget.spent:
        budget.resume = None
        ended = await _list(client, listing, resume, budget, found, seen, True, started_at)
        found.resume = None if ended else budget.resume or resume
    found.problem = budget.problem
    found.new.reverse()  # oldest first, so events go out in creation order
    return found


async def _list(
    client: ApiClient,
    listing: Listing,
    after: str | None,
    budget: PageBudget,
    found: Discovery,
    seen: set[str],
    first: bool,
    started_at: float,
) -> bool:
    """One listing into `found`; whether it ended (a seen object, the lookback, the end)."""
    fresh = set(found.new) | set(found.ignored)
    items_of = pages(
        client, listing.segments, listing.params, listing.what,
        after=after, budget=budget, headers=listing.headers,
    )  # fmt: skip
    async with aclosing(items_of):
        async for items in items_of:
            stop = False
            for raw in items:
                obj = listing.parse(raw)
                if obj is None:
                    listing.on_malformed()
                    continue
                if obj.object_id in seen:
                    stop = True
                    continue
                if obj.object_id in fresh:  # a list that repeats itself
                    continue
                fresh.add(obj.object_id)
                created = raw.get("created_at")
                old = isinstance(created, int | float) and created < int(started_at)
                if first and old and listing.is_terminal(obj.status):
                    found.ignored.append(obj.object_id)
                else:
                    found.new.append(obj.object_id)
                if (
                    first
                    and isinstance(created, int | float)
                    and created < started_at - listing.lookback
                ):
                    stop = True
            if stop:
                return True
    return budget.resume is None
