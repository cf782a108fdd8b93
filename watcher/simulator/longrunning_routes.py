"""The simulator's routes for the long-running kinds, under /v1 beside the Assistants ones.

`GET /responses/{id}`, `GET /batches[/{id}]`, `GET /fine_tuning/jobs[/{id}]` and
`GET /vector_stores/{vs}/file_batches/{id}`: no `OpenAI-Beta` header needed; the key,
required query, faults (routes "response", "batches", "batch", "fine_tuning_jobs",
"fine_tuning_job", "file_batch") and request counts as for every /v1 route.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from watcher.simulator.faults import openai_error
from watcher.simulator.state import World

__all__ = ["Host", "long_running_routes"]

Endpoint = Callable[[Request], Awaitable[Response]]


class _Clock(Protocol):
    def now(self) -> float: ...


class Host(Protocol):
    """What the routes need of the simulator app."""

    @property
    def world(self) -> World: ...
    @property
    def clock(self) -> _Clock: ...
    def endpoint(
        self, route: str, make: Callable[[Request], Response], *, beta: bool = ...
    ) -> Endpoint: ...


def _page(request: Request) -> tuple[int, str | None] | Response:
    """`limit` (1-100, default 20) and `after`; other parameters are ignored, as OpenAI does."""
    raw = request.query_params.get("limit", "20")
    if re.fullmatch(r"-?[0-9]{1,9}", raw) is None:
        message = f"Invalid 'limit': expected an integer, got {raw!r}."
        return openai_error(400, message, param="limit", code="invalid_type")
    if not 1 <= int(raw) <= 100:
        message = f"Invalid 'limit': must be between 1 and 100, got {int(raw)}."
        return openai_error(400, message, param="limit", code="integer_out_of_range")
    return int(raw), request.query_params.get("after")


def _answer(body: dict[str, Any] | None, missing: str) -> Response:
    return openai_error(404, missing) if body is None else JSONResponse(body)


def long_running_routes(sim: Host) -> list[Route]:
    """The /v1 routes of responses, batches, fine-tuning jobs and vector-store file batches."""

    def get_response(request: Request) -> Response:
        rid = request.path_params["response_id"]
        body = sim.world.long_running.response(rid, sim.clock.now())
        return _answer(body, f"Response with id '{rid}' not found.")

    def get_batch(request: Request) -> Response:
        bid = request.path_params["batch_id"]
        body = sim.world.long_running.batch(bid, sim.clock.now())
        return _answer(body, f"No batch found with id '{bid}'.")

    def list_batches(request: Request) -> Response:
        page = _page(request)
        if isinstance(page, Response):
            return page
        return JSONResponse(sim.world.long_running.list_batches(sim.clock.now(), *page))

    def get_job(request: Request) -> Response:
        jid = request.path_params["job_id"]
        body = sim.world.long_running.fine_tuning_job(jid, sim.clock.now())
        return _answer(body, f"No fine-tuning job found with id '{jid}'.")

    def list_jobs(request: Request) -> Response:
        page = _page(request)
        if isinstance(page, Response):
            return page
        return JSONResponse(sim.world.long_running.list_fine_tuning_jobs(sim.clock.now(), *page))

    def file_batch(request: Request) -> Response:
        vs, fid = request.path_params["vector_store_id"], request.path_params["batch_id"]
        body = sim.world.long_running.file_batch(vs, fid, sim.clock.now())
        return _answer(body, f"No file batch found with id '{fid}' in vector store '{vs}'.")

    def route(path: str, name: str, make: Callable[[Request], Response]) -> Route:
        return Route("/v1" + path, sim.endpoint(name, make, beta=False))

    return [
        route("/responses/{response_id}", "response", get_response),
        route("/batches", "batches", list_batches),
        route("/batches/{batch_id}", "batch", get_batch),
        route("/fine_tuning/jobs", "fine_tuning_jobs", list_jobs),
        route("/fine_tuning/jobs/{job_id}", "fine_tuning_job", get_job),
        route("/vector_stores/{vector_store_id}/file_batches/{batch_id}", "file_batch", file_batch),
    ]
