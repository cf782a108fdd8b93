"""The simulator's Assistants routes under /v1: a thread's runs, a run, its steps, a step.

Lists with cursors and `has_more` (`limit`, `order`, `after`, `before`), `include[]` for
file search content on steps, `openai-poll-after-ms` on GET run, OpenAI's 404s. The app
(`app`) checks the `OpenAI-Beta` header, the key and the query, and applies faults (routes
"runs", "run", "steps"); each GET of a run is timed for `/_sim/stats`' poll gaps.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from watcher.simulator.clocks import SimClock
from watcher.simulator.faults import openai_error
from watcher.simulator.state import RUN_TERMINAL, PageQuery, World

__all__ = ["INCLUDE_OK", "Host", "assistants_routes", "list_params"]

Endpoint = Callable[[Request], Awaitable[Response]]
POLL_AFTER = "openai-poll-after-ms"
INCLUDE_OK = frozenset({"step_details.tool_calls[*].file_search.results[*].content"})


class Host(Protocol):
    """What the routes need of the simulator app."""

    @property
    def world(self) -> World: ...
    @property
    def clock(self) -> SimClock: ...
    @property
    def last_poll(self) -> dict[str, float]: ...  # real time of each run's last GET
    @property
    def thread_of(self) -> dict[str, str]: ...
    @property
    def max_gap(self) -> dict[str, float]: ...  # longest real time between GETs of a live run
    def endpoint(
        self, route: str, make: Callable[[Request], Response], *, beta: bool = ...
    ) -> Endpoint: ...


def _bad(param: str, message: str, code: str | None = None) -> JSONResponse:
    return openai_error(400, message, param=param, code=code)


def list_params(request: Request, *, steps: bool) -> tuple[PageQuery, bool] | Response:
    """`limit` (1-100, default 20), `order` (asc|desc, default desc), `after`, `before`, and
    whether `include[]` asks for file search content (steps only); or a 400 naming the
    bad parameter."""
    q = request.query_params
    raw = q.get("limit", "20")
    if re.fullmatch(r"-?[0-9]{1,9}", raw) is None:
        return _bad("limit", f"Invalid 'limit': expected an integer, got {raw!r}.", "invalid_type")
    limit = int(raw)
    if not 1 <= limit <= 100:
        message = f"Invalid 'limit': must be between 1 and 100, got {limit}."
        return _bad("limit", message, "integer_out_of_range")
    order = q.get("order", "desc")
    if order not in ("asc", "desc"):
        return _bad("order", "Invalid 'order': expected one of 'asc' or 'desc'.", "invalid_value")
    include = q.getlist("include[]")
    for value in include:
        if not steps or value not in INCLUDE_OK:
            return _bad("include[]", f"Invalid 'include[]' value: {value!r}.", "invalid_value")
    return PageQuery(limit, order, q.get("after"), q.get("before")), bool(include)


def assistants_routes(sim: Host) -> list[Route]:
    """The /v1 routes of a thread's runs and a run's steps."""

    def missing(thread_id: str, run_id: str, step_id: str | None = None) -> Response:
        if not sim.world.has_thread(thread_id):
            return openai_error(404, f"No thread found with id '{thread_id}'.")
        if step_id is None or sim.world.run(thread_id, run_id, sim.clock.now()) is None:
            return openai_error(404, f"No run found with id '{run_id}'.")
        return openai_error(404, f"No run step found with id '{step_id}'.")

    def list_runs(request: Request) -> Response:
        thread_id, params = request.path_params["thread_id"], list_params(request, steps=False)
        if isinstance(params, Response):
            return params
        body = sim.world.list_runs(thread_id, sim.clock.now(), params[0])
        return missing(thread_id, "") if body is None else JSONResponse(body)

    def get_run(request: Request) -> Response:
        thread_id, run_id = request.path_params["thread_id"], request.path_params["run_id"]
        run = sim.world.run(thread_id, run_id, sim.clock.now())
        if run is None:
            return missing(thread_id, run_id)
        now, last = time.monotonic(), sim.last_poll.get(run_id)
        if last is not None and run["status"] not in RUN_TERMINAL:
            sim.max_gap[run_id] = max(sim.max_gap.get(run_id, 0.0), now - last)
        sim.last_poll[run_id] = now
        sim.thread_of[run_id] = thread_id
        poll = sim.world.poll_after_ms(thread_id, run_id)
        return JSONResponse(run, headers=None if poll is None else {POLL_AFTER: str(poll)})

    def list_steps(request: Request) -> Response:
        thread_id, run_id = request.path_params["thread_id"], request.path_params["run_id"]
        params = list_params(request, steps=True)
        if isinstance(params, Response):
            return params
        now, (query, content) = sim.clock.now(), params
        body = sim.world.list_steps(thread_id, run_id, now, query, content=content)
        return missing(thread_id, run_id) if body is None else JSONResponse(body)

    def get_step(request: Request) -> Response:
        p = request.path_params
        thread_id, run_id, step_id = p["thread_id"], p["run_id"], p["step_id"]
        include = request.query_params.getlist("include[]")
        if any(value not in INCLUDE_OK for value in include):
            return _bad("include[]", "Invalid 'include[]' value.", "invalid_value")
        now, content = sim.clock.now(), bool(include)
        step = sim.world.step(thread_id, run_id, step_id, now, content=content)
        return missing(thread_id, run_id, step_id) if step is None else JSONResponse(step)

    base = "/v1/threads/{thread_id}/runs"
    return [
        Route(base, sim.endpoint("runs", list_runs)),
        Route(base + "/{run_id}", sim.endpoint("run", get_run)),
        Route(base + "/{run_id}/steps", sim.endpoint("steps", list_steps)),
        Route(base + "/{run_id}/steps/{step_id}", sim.endpoint("steps", get_step)),
    ]
