"""The simulated Assistants API as an ASGI app (Starlette), with control routes under /_sim.

Answers follow the OpenAPI spec: list objects with cursors and `has_more`, OpenAI's error
shape, the `OpenAI-Beta` check, 401 for a wrong key. Faults are injected on demand.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from watcher.simulator.faults import Fault, FaultQueue, parse_faults
from watcher.simulator.scenario import Scenario
from watcher.simulator.state import RUN_TERMINAL, World

__all__ = ["ManualClock", "RealClock", "SimClock", "create_app"]

INCLUDE_OK = frozenset({"step_details.tool_calls[*].file_search.results[*].content"})


class SimClock(Protocol):
    def now(self) -> float: ...


class RealClock:
    """Seconds since creation, on the monotonic clock."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self._start


class ManualClock:
    """Moves only when told: deterministic tests."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> float:
        self.t += seconds
        return self.t


def error(
    status: int,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    }
    return JSONResponse(body, status_code=status, headers=headers)


def _mangled(response: Response) -> Response:
    """A 2xx whose objects lost a required field or grew unknown ones (a drifting server)."""
    if response.status_code != 200:
        return response
    body = json.loads(bytes(response.body))
    objects = body["data"] if isinstance(body.get("data"), list) else [body]
    for i, obj in enumerate(objects):
        obj["x_future_field"] = {"nested": [1, 2, 3]}
        if i == 0:
            obj.pop("status", None)
    return JSONResponse(body, status_code=200)


class _Reset(Response):
    """Headers promise more body than is sent: the client sees a broken connection."""

    def __init__(self, body: bytes) -> None:
        super().__init__(body, media_type="application/json")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(self.body) + 1000).encode()),
                ],
            }
        )
        await send(
            {
                "type": "http.response.body",
                "body": self.body[: len(self.body) // 2],
                "more_body": False,
            }
        )


class _Sim:
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
        self.api_key = api_key
        self.api_key_header = api_key_header.lower()
        self.required_query = dict(required_query or {})
        self.faults = FaultQueue()
        self.requests = 0
        self.by_route: dict[str, int] = {"runs": 0, "run": 0, "steps": 0}
        self.by_status: dict[str, int] = {}
        self.last_poll: dict[str, float] = {}
        self.max_gap: dict[str, float] = {}
        self.by_run: dict[str, int] = {}  # API requests about each run (GET run, steps)

    # -- checks and faults -----------------------------------------------------------------

    def check(self, request: Request) -> Response | None:
        if request.headers.get("openai-beta") != "assistants=v2":
            return error(
                400,
                "You must provide the 'OpenAI-Beta' header to access the "
                "Assistants API. Please try again by setting the header "
                "'OpenAI-Beta: assistants=v2'.",
                code="invalid_beta",
            )
        if self.api_key is not None:
            given = request.headers.get(self.api_key_header, "")
            want = (
                f"Bearer {self.api_key}" if self.api_key_header == "authorization" else self.api_key
            )
            if given != want:
                return error(401, "Incorrect API key provided.", code="invalid_api_key")
        for name, value in self.required_query.items():
            if request.query_params.get(name) != value:
                return error(400, f"Missing or wrong query parameter '{name}'.", param=name)
        return None

    async def answer(self, request: Request, route: str, make: Callable[[], Response]) -> Response:
        self.requests += 1
        self.by_route[route] += 1
        run_id = request.path_params.get("run_id")
        if run_id is not None:
            self.by_run[run_id] = self.by_run.get(run_id, 0) + 1
        response = self.check(request) or await self._faulted(route, make)
        self.by_status[str(response.status_code)] = (
            self.by_status.get(str(response.status_code), 0) + 1
        )
        return response

    async def _faulted(self, route: str, make: Callable[[], Response]) -> Response:
        fault = self.faults.take(route)
        if fault is None:
            return make()
        return await self._apply(fault, make)

    async def _apply(self, fault: Fault, make: Callable[[], Response]) -> Response:
        if fault.kind == "delay":
            await anyio.sleep(fault.seconds)
            return make()
        if fault.kind == "status":
            status = fault.status or 500
            headers = {}
            if fault.retry_after is not None:
                headers["retry-after"] = str(fault.retry_after)
            if fault.retry_after_ms is not None:
                headers["retry-after-ms"] = str(fault.retry_after_ms)
            message = "Rate limit reached." if status == 429 else "The server had an error."
            return error(
                status,
                message,
                code="rate_limit_exceeded" if status == 429 else None,
                headers=headers,
            )
        html = b"<html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>"
        if fault.kind == "html":
            return Response(html, status_code=fault.status or 503, media_type="text/html")
        if fault.kind == "not_json":
            return Response(html, status_code=200, media_type="text/html")
        if fault.kind == "mangle":
            return _mangled(make())
        body = bytes(make().body)
        if fault.kind == "truncated":
            return Response(body[: len(body) // 2], media_type="application/json")
        return _Reset(body)

    # -- lists ------------------------------------------------------------------------------

    @staticmethod
    def page(items: list[dict[str, Any]], request: Request, *, allow_include: bool) -> Response:
        q = request.query_params
        try:
            limit = int(q.get("limit", "20"))
        except ValueError:
            return error(400, "Invalid 'limit': must be an integer.", param="limit")
        if not 1 <= limit <= 100:
            return error(400, "Invalid 'limit': must be between 1 and 100.", param="limit")
        order = q.get("order", "desc")
        if order not in ("asc", "desc"):
            return error(400, "Invalid 'order': must be 'asc' or 'desc'.", param="order")
        for inc in q.getlist("include[]"):
            if not allow_include or inc not in INCLUDE_OK:
                return error(400, f"Invalid 'include[]' value: {inc!r}.", param="include[]")
        ordered = items if order == "asc" else items[::-1]
        ids = [o["id"] for o in ordered]
        start, end = 0, len(ordered)
        after, before = q.get("after"), q.get("before")
        if after is not None:
            start = ids.index(after) + 1 if after in ids else len(ids)
        if before is not None:
            end = ids.index(before) if before in ids else 0
        window = ordered[start:end]
        data = window[:limit]
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
                "has_more": len(window) > limit,
            }
        )

    # -- routes -----------------------------------------------------------------------------

    async def list_runs(self, request: Request) -> Response:
        thread_id = request.path_params["thread_id"]

        def make() -> Response:
            runs = self.world.thread_runs_at(thread_id, self.clock.now())
            if runs is None:
                return error(404, f"No thread found with id '{thread_id}'.")
            return self.page(runs, request, allow_include=False)

        return await self.answer(request, "runs", make)

    async def get_run(self, request: Request) -> Response:
        thread_id, run_id = request.path_params["thread_id"], request.path_params["run_id"]

        def make() -> Response:
            now = self.clock.now()
            run = self.world.run(thread_id, run_id, now)
            if run is None:
                return error(404, f"No run found with id '{run_id}'.")
            self._track_poll(run_id, run["status"])
            spec = self.world.runs[(thread_id, run_id)].spec
            headers = (
                {"openai-poll-after-ms": str(spec.poll_after_ms)} if spec.poll_after_ms else None
            )
            return JSONResponse(run, headers=headers)

        return await self.answer(request, "run", make)

    def _track_poll(self, run_id: str, status: str) -> None:
        now = time.monotonic()
        last = self.last_poll.get(run_id)
        if last is not None and status not in RUN_TERMINAL:
            self.max_gap[run_id] = max(self.max_gap.get(run_id, 0.0), now - last)
        self.last_poll[run_id] = now

    async def list_steps(self, request: Request) -> Response:
        thread_id, run_id = request.path_params["thread_id"], request.path_params["run_id"]

        def make() -> Response:
            steps = self.world.steps(thread_id, run_id, self.clock.now())
            if steps is None:
                return error(404, f"No run found with id '{run_id}'.")
            return self.page(steps, request, allow_include=True)

        return await self.answer(request, "steps", make)

    async def get_step(self, request: Request) -> Response:
        p = request.path_params

        def make() -> Response:
            steps = self.world.steps(p["thread_id"], p["run_id"], self.clock.now()) or []
            step = next((s for s in steps if s["id"] == p["step_id"]), None)
            if step is None:
                return error(404, f"No run step found with id '{p['step_id']}'.")
            return JSONResponse(step)

        return await self.answer(request, "steps", make)

    async def not_found(self, request: Request) -> Response:
        self.requests += 1
        return error(404, f"Invalid URL ({request.method} {request.url.path})", code="unknown_url")

    # -- control ----------------------------------------------------------------------------

    async def advance(self, request: Request) -> Response:
        if not isinstance(self.clock, ManualClock):
            return JSONResponse({"error": "the clock is real"}, status_code=409)
        body = json.loads(await request.body() or b"{}")
        return JSONResponse({"now": self.clock.advance(float(body.get("seconds", 0)))})

    async def add_faults(self, request: Request) -> Response:
        try:
            self.faults.add(parse_faults(json.loads(await request.body())))
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        return Response(status_code=204)

    async def stats(self, request: Request) -> Response:
        return JSONResponse(
            {
                "requests": self.requests,
                "by_route": self.by_route,
                "by_status": self.by_status,
                "faults_injected": self.faults.injected,
                "max_poll_gap": max(self.max_gap.values(), default=0.0),
                "polled_runs": len(self.last_poll),
                "by_run": self.by_run,
            }
        )

    async def transitions(self, request: Request) -> Response:
        now = self.clock.now()
        return JSONResponse({"now": now, "transitions": self.world.transitions_until(now)})

    async def scenario(self, request: Request) -> Response:
        return JSONResponse(
            {
                "threads": [
                    {"id": t.id, "runs": [r.id for r in t.runs]}
                    for t in self.world.scenario.threads
                ]
            }
        )


def create_app(
    scenario: Scenario,
    *,
    clock: SimClock | None = None,
    api_key: str | None = None,
    api_key_header: str = "authorization",
    required_query: Mapping[str, str] | None = None,
) -> Starlette:
    sim = _Sim(scenario, clock or RealClock(), api_key, api_key_header, required_query)
    base = "/v1/threads/{thread_id}/runs"
    routes = [
        Route(base, sim.list_runs),
        Route(base + "/{run_id}", sim.get_run),
        Route(base + "/{run_id}/steps", sim.list_steps),
        Route(base + "/{run_id}/steps/{step_id}", sim.get_step),
        Route("/_sim/advance", sim.advance, methods=["POST"]),
        Route("/_sim/faults", sim.add_faults, methods=["POST"]),
        Route("/_sim/stats", sim.stats),
        Route("/_sim/transitions", sim.transitions),
        Route("/_sim/scenario", sim.scenario),
        Route("/{path:path}", sim.not_found, methods=["GET", "POST", "DELETE", "PUT"]),
    ]
    app = Starlette(routes=routes)
    app.state.sim = sim
    return app
