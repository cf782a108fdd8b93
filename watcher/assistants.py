"""Everything specific to the Assistants API: paths, object kinds, statuses, terminal rules.

Another source (e.g. Responses background mode) would be a sibling of this module; the
core (`transitions`, `store`, `scheduler`, `app`) only sees `Observed` objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from watcher.client import ApiClient
from watcher.errors import BadResponseError
from watcher.ids import is_valid_id
from watcher.transitions import Observed

__all__ = [
    "RUN",
    "RUN_TERMINAL",
    "SLOW_STATUSES",
    "STEP",
    "STEP_TERMINAL",
    "Discovery",
    "Observation",
    "discover_runs",
    "is_terminal",
    "observe_run",
    "parse_object",
    "run_succeeded",
]

log = structlog.get_logger("watcher.assistants")

RUN = "thread.run"
STEP = "thread.run.step"
RUN_TERMINAL = frozenset({"cancelled", "failed", "completed", "incomplete", "expired"})
STEP_TERMINAL = frozenset({"cancelled", "failed", "completed", "expired"})
#: Statuses that wait on something slow (the user's tool outputs): polled less often.
SLOW_STATUSES = frozenset({"requires_action"})
#: Statuses in which no step can change until the run's own status does.
STEPS_FROZEN = frozenset({"queued", "requires_action"})
PAGE = 100
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


def _page(body: Any, what: str) -> tuple[list[Any], bool]:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise BadResponseError(f"{what}: the response is not a list object")
    return body["data"], body.get("has_more") is True


@dataclass(slots=True)
class Observation:
    """One poll of one run: its objects in the order their events should go out."""

    objects: list[Observed]
    run_status: str
    cursor: str | None
    done: bool
    poll_after: float | None


async def observe_run(
    client: ApiClient,
    thread_id: str,
    run_id: str,
    *,
    cursor: str | None,
    include: Sequence[str] = (),
    previous_status: str | None = None,
) -> Observation:
    """GET the run, then list its steps after `cursor` (so the listing follows the run).

    A run still `queued` or still `requires_action` since the last poll has no step that
    can change (steps appear once it runs; the tool step waits on the outputs), so its
    steps are not listed again: one request instead of two.
    """
    response = await client.get(("threads", thread_id, "runs", run_id))
    run = parse_object(response.body, RUN, thread_id, run_id)
    if run is None or run.object_id != run_id:
        raise BadResponseError(f"run {run_id}: the response is not a run object")
    if run.status in STEPS_FROZEN and run.status == previous_status:
        return Observation([run], run.status, cursor, False, response.poll_after)
    steps: list[Observed] = []
    malformed = 0
    new_cursor, prefix_open, all_terminal = cursor, True, True
    after = cursor
    params_base = [("order", "asc"), ("limit", str(PAGE))] + [("include[]", i) for i in include]
    while True:
        params = [*params_base, ("after", after)] if after else params_base
        page = await client.get(("threads", thread_id, "runs", run_id, "steps"), params)
        items, has_more = _page(page.body, f"run {run_id} steps")
        for raw in items:
            step = parse_object(raw, STEP, thread_id, run_id)
            if step is None:
                malformed += 1
                prefix_open = all_terminal = False
                continue
            steps.append(step)
            if is_terminal(STEP, step.status):
                if prefix_open:
                    new_cursor = step.object_id
            else:
                prefix_open = all_terminal = False
        last = items[-1].get("id") if items and isinstance(items[-1], dict) else None
        if not has_more or not is_valid_id(last) or last == after:
            break
        after = last
    if malformed:
        log.warning("malformed run steps skipped", run_id=run_id, count=malformed)
    run_done = is_terminal(RUN, run.status)
    objects = [*steps, run] if run_done else [run, *steps]
    return Observation(
        objects=objects,
        run_status=run.status,
        cursor=new_cursor,
        done=run_done and all_terminal,
        poll_after=response.poll_after,
    )


@dataclass(slots=True)
class Discovery:
    """Runs of a thread that a thread watch should start watching."""

    new_runs: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


async def discover_runs(
    client: ApiClient,
    thread_id: str,
    *,
    seen: set[str],
    first: bool,
    started_at: float,
) -> Discovery:
    """List the thread's runs, newest first, until a run already seen.

    On the first listing of a watch, runs that had already finished before the watch
    began are ignored (remembered as seen, never reported); active ones are watched.
    """
    found = Discovery()
    after: str | None = None
    while True:
        params = [("order", "desc"), ("limit", str(PAGE))]
        if after:
            params.append(("after", after))
        page = await client.get(("threads", thread_id, "runs"), params)
        items, has_more = _page(page.body, f"thread {thread_id} runs")
        stop = False
        for raw in items:
            run = parse_object(raw, RUN, thread_id, None)
            if run is None:
                log.warning("malformed run skipped", thread_id=thread_id)
                continue
            if run.object_id in seen:
                stop = True
                continue
            created = raw.get("created_at")
            old = isinstance(created, int | float) and created < int(started_at)
            if first and old and is_terminal(RUN, run.status):
                found.ignored.append(run.object_id)
            else:
                found.new_runs.append(run.object_id)
            if (
                first
                and isinstance(created, int | float)
                and created < started_at - LOOKBACK_SECONDS
            ):
                stop = True
        last = items[-1].get("id") if items and isinstance(items[-1], dict) else None
        if stop or not has_more or not is_valid_id(last) or last == after:
            break
        after = last
    found.new_runs.reverse()  # oldest first, so events go out in creation order
    return found
