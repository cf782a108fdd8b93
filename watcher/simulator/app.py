"""The simulated API as an ASGI app (Starlette): the checks, faults and counts every /v1
request goes through, and the routes put together.

Every /v1 route: OpenAI's error shape, the `OpenAI-Beta` check (Assistants routes), an
optional key (401 that never echoes it) and required query (Azure's `api-version`), an
optional rate limit; injected faults apply to /v1 only. The routes: `assistants_routes`
(runs and steps), `longrunning_routes` (responses, batches, fine-tuning jobs, file
batches), `control_routes` (/_sim, no auth). The clocks (`clocks`) are importable from here.
"""

from __future__ import annotations

import functools
import hmac
import time
from collections.abc import Awaitable, Callable, Mapping

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from watcher.simulator.assistants_routes import assistants_routes
from watcher.simulator.clocks import ManualClock, RealClock, SimClock
from watcher.simulator.control_routes import control_routes
from watcher.simulator.faults import FaultQueue, apply_fault, openai_error
from watcher.simulator.limiter import TokenBucket
from watcher.simulator.longrunning_routes import long_running_routes
from watcher.simulator.scenario import Scenario
from watcher.simulator.state import World

__all__ = ["ManualClock", "RealClock", "SimClock", "create_app"]

Endpoint = Callable[[Request], Awaitable[Response]]
BETA_MESSAGE = (
    "You must provide the 'OpenAI-Beta' header to access the Assistants API. Please try "
    "again by setting the header 'OpenAI-Beta: assistants=v2'."
)


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
                message = f"Missing or unsupported '{name}' query parameter."
                return openai_error(400, message, param=name)
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

    async def not_found(self, request: Request, exc: Exception) -> Response:
        """Any other path or method: OpenAI's `Invalid URL` under /v1."""
        if not request.url.path.startswith("/v1/"):
            return JSONResponse({"error": f"no such route: {request.url.path}"}, status_code=404)
        message = f"Invalid URL ({request.method} {request.url.path})"
        return self._counted(openai_error(404, message))


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
    routes = [*assistants_routes(sim), *long_running_routes(sim), *control_routes(sim)]
    app = Starlette(routes=routes, exception_handlers={404: sim.not_found, 405: sim.not_found})
    app.state.sim = sim
    return app
