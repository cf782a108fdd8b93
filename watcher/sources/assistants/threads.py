"""A thread's runs, newest first: what a thread watch discovers."""

from __future__ import annotations

from contextlib import aclosing

import structlog

from watcher.client import ApiClient
from watcher.paging import PageBudget, pages
from watcher.sources.assistants.objects import HEADERS, PAGE, RUN, is_terminal, parse_object
from watcher.sources.base import MAX_PAGES, Discovery

__all__ = ["LOOKBACK_SECONDS", "discover_runs"]

log = structlog.get_logger("watcher.assistants")  # the logger's name is kept

#: A thread watch's first listing looks back this far for runs still active.
LOOKBACK_SECONDS = 3600


async def discover_runs(
    client: ApiClient,
    thread_id: str,
    *,
    seen: set[str],
    first: bool,
    started_at: float,
    resume: str | None = None,
    max_pages: int = MAX_PAGES,
) -> Discovery:
    """List the thread's runs, newest first, until a run already seen.

    On the first listing of a watch, runs that had already finished before the watch
    began are ignored (remembered as seen, never reported); active ones are watched.

    At most `max_pages` pages: the newest runs first; then, with the pages left, the older
    runs from `resume`, where a listing cut short before ended (under the first listing's
    rules, which it continues).
    """
    found = Discovery(resume=resume)
    budget = PageBudget(max_pages)
    ended = await _list_runs(client, thread_id, None, budget, found, seen, first, started_at)
    if not ended:
        found.resume = budget.resume  # newer runs first: an older backlog waits its turn
    elif resume is not None and not budget.spent:
        budget.resume = None
        ended = await _list_runs(client, thread_id, resume, budget, found, seen, True, started_at)
        found.resume = None if ended else budget.resume or resume
    found.problem = budget.problem
    found.new.reverse()  # oldest first, so events go out in creation order
    return found


async def _list_runs(
    client: ApiClient,
    thread_id: str,
    after: str | None,
    budget: PageBudget,
    found: Discovery,
    seen: set[str],
    first: bool,
    started_at: float,
) -> bool:
    """One listing into `found`; whether it ended (a seen run, the lookback, the end)."""
    fresh = set(found.new) | set(found.ignored)
    params = [("order", "desc"), ("limit", str(PAGE))]
    listing = pages(
        client, ("threads", thread_id, "runs"), params, f"thread {thread_id} runs",
        after=after, budget=budget, headers=HEADERS,
    )  # fmt: skip
    async with aclosing(listing):
        async for items in listing:
            stop = False
            for raw in items:
                run = parse_object(raw, RUN, thread_id, None)
                if run is None:
                    log.warning("malformed run skipped", thread_id=thread_id)
                    continue
                if run.object_id in seen:
                    stop = True
                    continue
                if run.object_id in fresh:  # a list that repeats itself
                    continue
                fresh.add(run.object_id)
                created = raw.get("created_at")
                old = isinstance(created, int | float) and created < int(started_at)
                if first and old and is_terminal(RUN, run.status):
                    found.ignored.append(run.object_id)
                else:
                    found.new.append(run.object_id)
                if (
                    first
                    and isinstance(created, int | float)
                    and created < started_at - LOOKBACK_SECONDS
                ):
                    stop = True
            if stop:
                return True
    return budget.resume is None
