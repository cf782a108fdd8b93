"""A run and its steps: GET the run, list its steps after the tail cursor."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import aclosing

import structlog

from watcher.api.client import ApiClient
from watcher.api.paging import PageBudget, pages
from watcher.core.errors import BadResponseError
from watcher.core.transitions import Observed
from watcher.sources.assistants.objects import (
    HEADERS,
    PAGE,
    RUN,
    STEP,
    STEPS_FROZEN,
    is_terminal,
    parse_object,
)
from watcher.sources.base import MAX_PAGES, Observation

__all__ = ["observe_run"]

log = structlog.get_logger("watcher.assistants")  # the logger's name is kept


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
    after = resume or cursor
    if after is not None and (ids := [s.object_id for s in steps]) and after in ids:
        # a server that reads `after` as "from" (or ignores it) lists again what is behind
        # the cursor: finished steps, already reported and forgotten, not to report again
        steps = steps[ids.index(after) + 1 :]
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
