"""The Assistants API as a source: a run and its steps (tail cursor), a thread's runs.

Paths, object kinds, statuses, terminal rules and the `OpenAI-Beta` header live here; the
core sees only `ASSISTANTS`, a `watcher.sources.base.Source`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import aclosing
from typing import Any

import structlog

from watcher.client import ApiClient
from watcher.errors import BadResponseError
from watcher.ids import is_valid_id
from watcher.paging import PageBudget, pages
from watcher.sources.base import MAX_PAGES, Discovery, Kind, Observation
from watcher.transitions import Observed

__all__ = [
    "ASSISTANTS",
    "HEADERS",
    "KINDS",
    "MAX_PAGES",
    "RUN",
    "RUN_TERMINAL",
    "SLOW_STATUSES",
    "STEP",
    "STEP_TERMINAL",
    "AssistantsSource",
    "Discovery",
    "Observation",
    "discover_runs",
    "is_terminal",
    "observe_run",
    "parse_object",
    "run_succeeded",
]

log = structlog.get_logger("watcher.assistants")  # the logger's name is kept

RUN = "thread.run"
STEP = "thread.run.step"
RUN_TERMINAL = frozenset({"cancelled", "failed", "completed", "incomplete", "expired"})
STEP_TERMINAL = frozenset({"cancelled", "failed", "completed", "expired"})
#: Statuses that wait on something slow (the user's tool outputs): polled less often.
SLOW_STATUSES = frozenset({"requires_action"})
#: Statuses in which no step can change until the run's own status does.
RUN_STATUSES: tuple[str, ...] = ("queued", "in_progress", "requires_action", "cancelling")
RUN_STATUSES += ("cancelled", "failed", "completed", "incomplete", "expired")
STEPS_FROZEN = frozenset({"queued", "requires_action"})
PAGE = 100
#: Only this source's requests carry it (the others' servers need no beta header).
HEADERS: Mapping[str, str] = {"OpenAI-Beta": "assistants=v2"}
KINDS = {
    RUN: Kind(
        object=RUN,
        statuses=RUN_STATUSES,
        terminal=RUN_TERMINAL,
        success=frozenset({"completed"}),
        slow=SLOW_STATUSES,
    ),
    STEP: Kind(
        object=STEP,
        statuses=("in_progress", "cancelled", "failed", "completed", "expired"),
        terminal=STEP_TERMINAL,
    ),
}
#: A thread watch's first listing looks back this far for runs still active.
LOOKBACK_SECONDS = 3600


def is_terminal(kind: str, status: str) -> bool:
    """Unknown future statuses are not terminal: we keep watching rather than stop early."""
    return status in (RUN_TERMINAL if kind == RUN else STEP_TERMINAL)


def run_succeeded(status: str) -> bool:
    return status == "completed"


def parse_object(raw: Any, kind: str, thread_id: str, run_id: str | None) -> Observed | None:
    """An `Observed` if `raw` is a well-formed object of `kind`, else None (caller logs)."""
    if not isinstance(raw, dict):
        return None
    object_id, status = raw.get("id"), raw.get("status")
    if raw.get("object") != kind or not is_valid_id(object_id) or not isinstance(status, str):
        return None
    if not status or len(status) > 64:
        return None
    assert isinstance(object_id, str)
    return Observed(
        object_id=object_id,
        kind=kind,
        status=status,
        thread_id=thread_id,
        run_id=object_id if kind == RUN else (run_id or ""),
        data=raw,
    )


async def observe_run(
    client: ApiClient,
    thread_id: str,
    run_id: str,
    *,
    cursor: str | None,
    include: Sequence[str] = (),
    previous_status: str | None = None,
    resume: str | None = None,
    max_pages: int = MAX_PAGES,
) -> Observation:
    """GET the run, then list its steps after `cursor` (so the listing follows the run).

    A run still `queued` or still `requires_action` since the last poll has no step that
    can change (steps appear once it runs; the tool step waits on the outputs), so its
    steps are not listed again: one request instead of two.

    At most `max_pages` pages are listed; a listing cut short says where to `resume` at
    the next poll, which lists from there to the end before starting over at `cursor`.
    """
    response = await client.get(("threads", thread_id, "runs", run_id), headers=HEADERS)
    run = parse_object(response.body, RUN, thread_id, run_id)
    if run is None or run.object_id != run_id:
        raise BadResponseError(f"run {run_id}: the response is not a run object")
    if run.status in STEPS_FROZEN and run.status == previous_status:
        return Observation([run], run.status, cursor, False, response.poll_after, resume)
    steps: list[Observed] = []
    listed: set[str] = set()
    malformed = 0
    # from a resume point, the steps before it were not seen this time: no cursor move, and
    # no "all terminal" (the next poll lists from the cursor again)
    new_cursor, prefix_open = cursor, resume is None
    all_terminal = True
    budget = PageBudget(max_pages)
    params = [("order", "asc"), ("limit", str(PAGE))] + [("include[]", i) for i in include]
    segments = ("threads", thread_id, "runs", run_id, "steps")
    listing = pages(
        client,
        segments,
        params,
        f"run {run_id} steps",
        after=resume or cursor,
        budget=budget,
        headers=HEADERS,
    )
    async with aclosing(listing):
        async for items in listing:
            for raw in items:
                step = parse_object(raw, STEP, thread_id, run_id)
                if step is None:
                    malformed += 1
                    prefix_open = all_terminal = False
                    continue
                if step.object_id in listed:  # a list that repeats itself
                    continue
                listed.add(step.object_id)
                steps.append(step)
                if is_terminal(STEP, step.status):
                    if prefix_open:
                        new_cursor = step.object_id
                else:
                    prefix_open = all_terminal = False
    if malformed:
        log.warning("malformed run steps skipped", run_id=run_id, count=malformed)
    whole = budget.problem is None and resume is None  # the list seen from cursor to end
    all_terminal = all_terminal and whole
    run_done = is_terminal(RUN, run.status)
    # a terminal run's event goes out after its steps': held back while the list is unseen
    objects = ([*steps, run] if whole else steps) if run_done else [run, *steps]
    return Observation(
        objects=objects,
        status=run.status,
        cursor=new_cursor,
        done=run_done and all_terminal,
        poll_after=response.poll_after,
        # a cut listing whose steps were all terminal moved the cursor to its end already
        resume=budget.resume if budget.resume and not prefix_open else None,
        problem=budget.problem,
    )


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


class AssistantsSource:
    """`Source` for the Assistants API: a watch's path is (thread id, run id)."""

    name = "assistants"
    kinds: Mapping[str, Kind] = KINDS
    root = RUN
    headers = HEADERS

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
        thread_id, run_id = path
        return await observe_run(
            client,
            thread_id,
            run_id,
            cursor=cursor,
            include=include,
            previous_status=previous_status,
            resume=resume,
            max_pages=max_pages,
        )

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
        assert parent is not None, "runs are listed per thread"
        return await discover_runs(
            client,
            parent,
            seen=seen,
            first=first,
            started_at=started_at,
            resume=resume,
            max_pages=max_pages,
        )


ASSISTANTS = AssistantsSource()
