"""The simulated Assistants API as an ASGI app (Starlette), and the clocks it runs on.

Under /v1, the four GET routes of the spec: list objects with cursors and `has_more`,
OpenAI's error shape, the `OpenAI-Beta` check, an optional key (401 that never echoes it)
and required query (Azure's `api-version`). Injected faults apply to /v1 only. Under /_sim,
no auth: advance the clock, inject faults, read stats, transitions and the scenario.
"""

from __future__ import annotations

import functools
import hmac
import json
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from watcher.simulator.faults import FaultQueue, apply_fault, openai_error, parse_faults
from watcher.simulator.limiter import TokenBucket
from watcher.simulator.longrunning_routes import long_running_routes
from watcher.simulator.scenario import Scenario
from watcher.simulator.state import RUN_TERMINAL, PageQuery, World

__all__ = ["ManualClock", "RealClock", "SimClock", "create_app"]

Endpoint = Callable[[Request], Awaitable[Response]]
POLL_AFTER = "openai-poll-after-ms"
INCLUDE_OK = frozenset({"step_details.tool_calls[*].file_search.results[*].content"})
BETA_MESSAGE = (
    "You must provide the 'OpenAI-Beta' header to access the Assistants API. Please try "
    "again by setting the header 'OpenAI-Beta: assistants=v2'."
)


class SimClock(Protocol):
    """The simulator's time: seconds since it started."""

    def now(self) -> float: ...


class RealClock:
    """Seconds since creation, on the monotonic clock."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self._start


class ManualClock:
    """Starts at 0 and moves only when told: deterministic tests."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> float:
        if not (seconds >= 0 and math.isfinite(seconds)):
            raise ValueError(f"must be a finite number >= 0, got {seconds}")
        self.t += seconds
        return self.t


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


class _Sim:
    """The app's state: the world, clock, checks, faults and request counts."""

    def __init__(
        self,
        scenario: Scenario,
        clock: SimClock,
        api_key: str | None,
        api_key_header: str,
        required_query: Mapping[str, str] | None,
    ) -> None:
        self.world = World(scenario, scenario.epoch if scenario.epoch is not None else time.time())
        self.clock = clock
        self.want_key = None
        if api_key is not None:
            bearer = api_key_header.lower() == "authorization"
            self.want_key = (f"Bearer {api_key}" if bearer else api_key).encode()
        self.key_header = api_key_header.lower()
        self.required_query = dict(required_query or {})
        self.faults = FaultQueue()
        self.limiter: TokenBucket | None = None
        self.requests = 0
        self.by_route: dict[str, int] = {"runs": 0, "run": 0, "steps": 0}
        self.by_status: dict[str, int] = {}
        self.by_run: dict[str, int] = {}  # API requests about each run (GET run, steps)
        self.last_poll: dict[str, float] = {}  # real time of each run's last GET
        self.thread_of: dict[str, str] = {}
        self.max_gap: dict[str, float] = {}  # longest real time between GETs of a live run

    def _counted(self, response: Response) -> Response:
        self.requests += 1
        key = str(response.status_code)
        self.by_status[key] = self.by_status.get(key, 0) + 1
        return response

    def check(self, request: Request, *, beta: bool = True) -> Response | None:
        """The checks of every /v1 request: beta header (Assistants routes), key, query."""
        if beta and request.headers.get("openai-beta") != "assistants=v2":
            return openai_error(400, BETA_MESSAGE, code="invalid_beta")
        if self.want_key is not None:
            given = request.headers.get(self.key_header, "").encode()
            if not hmac.compare_digest(given, self.want_key):
                message = "Incorrect API key provided." if given else "No API key provided."
                return openai_error(401, message, code="invalid_api_key")
        for name, value in self.required_query.items():
            if request.query_params.get(name) != value:
                return _bad(name, f"Missing or unsupported '{name}' query parameter.")
        return None

    def endpoint(
        self, route: str, make: Callable[[Request], Response], *, beta: bool = True
    ) -> Endpoint:
        """A /v1 route: counted, checked, faulted when a fault matches, else `make`."""

        async def handle(request: Request) -> Response:
            self.by_route[route] = self.by_route.get(route, 0) + 1
            run_id = request.path_params.get("run_id")
            if run_id is not None:
                self.by_run[run_id] = self.by_run.get(run_id, 0) + 1
            response = self.check(request, beta=beta)
            limit: dict[str, str] = {}
            if response is None and self.limiter is not None:
                allowed, limit = self.limiter.take()
                if not allowed:
                    message, code = "Rate limit reached for requests.", "rate_limit_exceeded"
                    response = openai_error(429, message, kind="requests", code=code)
            if response is None:
                fault = self.faults.take(route)
                normal = functools.partial(make, request)
                response = normal() if fault is None else await apply_fault(fault, normal)
            response.headers.update(limit)
            return self._counted(response)

        return handle

    def missing(self, thread_id: str, run_id: str, step_id: str | None = None) -> Response:
        if not self.world.has_thread(thread_id):
            return openai_error(404, f"No thread found with id '{thread_id}'.")
        if step_id is None or self.world.run(thread_id, run_id, self.clock.now()) is None:
            return openai_error(404, f"No run found with id '{run_id}'.")
        return openai_error(404, f"No run step found with id '{step_id}'.")

    # -- /v1 --------------------------------------------------------------------------------

    def list_runs(self, request: Request) -> Response:
        thread_id, params = request.path_params["thread_id"], list_params(request, steps=False)
        if isinstance(params, Response):
            return params
        body = self.world.list_runs(thread_id, self.clock.now(), params[0])
        return self.missing(thread_id, "") if body is None else JSONResponse(body)

    def get_run(self, request: Request) -> Response:
        thread_id, run_id = request.path_params["thread_id"], request.path_params["run_id"]
        run = self.world.run(thread_id, run_id, self.clock.now())
        if run is None:
            return self.missing(thread_id, run_id)
        now, last = time.monotonic(), self.last_poll.get(run_id)
        if last is not None and run["status"] not in RUN_TERMINAL:
            self.max_gap[run_id] = max(self.max_gap.get(run_id, 0.0), now - last)
        self.last_poll[run_id] = now
        self.thread_of[run_id] = thread_id
        poll = self.world.poll_after_ms(thread_id, run_id)
        return JSONResponse(run, headers=None if poll is None else {POLL_AFTER: str(poll)})

    def list_steps(self, request: Request) -> Response:
        thread_id, run_id = request.path_params["thread_id"], request.path_params["run_id"]
        params = list_params(request, steps=True)
        if isinstance(params, Response):
            return params
        now, (query, content) = self.clock.now(), params
        body = self.world.list_steps(thread_id, run_id, now, query, content=content)
        return self.missing(thread_id, run_id) if body is None else JSONResponse(body)

    def get_step(self, request: Request) -> Response:
        p = request.path_params
        thread_id, run_id, step_id = p["thread_id"], p["run_id"], p["step_id"]
        include = request.query_params.getlist("include[]")
        if any(value not in INCLUDE_OK for value in include):
            return _bad("include[]", "Invalid 'include[]' value.", "invalid_value")
        now, content = self.clock.now(), bool(include)
        step = self.world.step(thread_id, run_id, step_id, now, content=content)
        return self.missing(thread_id, run_id, step_id) if step is None else JSONResponse(step)

    async def not_found(self, request: Request, exc: Exception) -> Response:
        """Any other path or method: OpenAI's `Invalid URL` under /v1."""
        if not request.url.path.startswith("/v1/"):
            return JSONResponse({"error": f"no such route: {request.url.path}"}, status_code=404)
        message = f"Invalid URL ({request.method} {request.url.path})"
        return self._counted(openai_error(404, message))

    # -- /_sim --------------------------------------------------------------------------------

    async def advance(self, request: Request) -> Response:
        if not isinstance(self.clock, ManualClock):
            return JSONResponse({"error": "the clock is real: nothing to advance"}, status_code=409)
        try:
            seconds = json.loads(await request.body() or b"{}").get("seconds", 0)
            return JSONResponse({"now": self.clock.advance(float(seconds))})
        except (ValueError, TypeError, AttributeError) as exc:
            return JSONResponse({"error": f"seconds: {exc}"}, status_code=400)

    async def add_faults(self, request: Request) -> Response:
        try:
            self.faults.add(parse_faults(json.loads(await request.body())))
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        return Response(status_code=204)

    def open_poll_gap(self) -> float:
        """The longest time since the last GET of a run that has not ended: a starved run."""
        now, t = time.monotonic(), self.clock.now()
        gaps = [
            now - last
            for run_id, last in self.last_poll.items()
            if (run := self.world.run(self.thread_of[run_id], run_id, t)) is not None
            and run["status"] not in RUN_TERMINAL
        ]
        return max(gaps, default=0.0)

    async def stats(self, request: Request) -> Response:
        return JSONResponse(
            {
                "requests": self.requests,
                "by_route": self.by_route,
                "by_status": self.by_status,
                "faults_injected": self.faults.injected,
                "faults_pending": self.faults.pending(),
                "max_poll_gap": max(self.max_gap.values(), default=0.0),
                "open_poll_gap": self.open_poll_gap(),
                "polled_runs": len(self.last_poll),
                "by_run": self.by_run,
            }
        )

    async def transitions(self, request: Request) -> Response:
        now = self.clock.now()
        return JSONResponse({"now": now, "transitions": self.world.transitions_until(now)})

    async def scenario(self, request: Request) -> Response:
        scenario = self.world.scenario
        listing = [{"id": t.id, "runs": [r.id for r in t.runs]} for t in scenario.threads]
        lr = scenario.long_running
        kinds = {
            "responses": [o.id for o in lr.responses],
            "batches": [o.id for o in lr.batches],
            "fine_tuning_jobs": [o.id for o in lr.fine_tuning_jobs],
            "file_batches": [
                {"vector_store_id": o.vector_store_id, "id": o.id} for o in lr.file_batches
            ],
        }
        # each other kind of object, when the scenario has some
        return JSONResponse({"threads": listing} | {k: v for k, v in kinds.items() if v})


def create_app(
    scenario: Scenario,
    *,
    clock: SimClock | None = None,
    api_key: str | None = None,
    api_key_header: str = "authorization",
    required_query: Mapping[str, str] | None = None,
    rate_limit: TokenBucket | None = None,
) -> Starlette:
    """The simulator; `clock` defaults to a `RealClock`. Its state is `app.state.sim`.

    `rate_limit`: a token bucket every /v1 request passes (429 beyond it)."""
    sim = _Sim(scenario, clock or RealClock(), api_key, api_key_header, required_query)
    sim.limiter = rate_limit
    base = "/v1/threads/{thread_id}/runs"
    routes = [
        Route(base, sim.endpoint("runs", sim.list_runs)),
        Route(base + "/{run_id}", sim.endpoint("run", sim.get_run)),
        Route(base + "/{run_id}/steps", sim.endpoint("steps", sim.list_steps)),
        Route(base + "/{run_id}/steps/{step_id}", sim.endpoint("steps", sim.get_step)),
        *long_running_routes(sim),
        Route("/_sim/advance", sim.advance, methods=["POST"]),
        Route("/_sim/faults", sim.add_faults, methods=["POST"]),
        Route("/_sim/stats", sim.stats),
        Route("/_sim/transitions", sim.transitions),
        Route("/_sim/scenario", sim.scenario),
    ]
    app = Starlette(routes=routes, exception_handlers={404: sim.not_found, 405: sim.not_found})
    app.state.sim = sim
    return app
