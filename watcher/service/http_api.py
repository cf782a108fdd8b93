"""The optional HTTP endpoint: health, readiness, status, Prometheus metrics, control API.

Readiness is not tied to the upstream API's health: a sidecar's readiness gates its whole
pod, and an API outage must not pull the app out of service. Upstream health is in
/metrics and /status.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from watcher.core.ids import is_valid_id
from watcher.service.http_guards import RequestGuard, bearer_matches
from watcher.service.http_watches import BodyError, delete_key, parse_body, shown
from watcher.service.metrics import Metrics
from watcher.sources.kinds import TYPES
from watcher.watching.app import Watcher

__all__ = ["BearerToken", "create_http_app"]

Handler = Callable[[Request], Awaitable[Response]]
DepthFn = Callable[[], Awaitable[dict[str, int]]]


class BearerToken:
    """The control API's token, replaced in place on reload: the old one stops at once."""

    def __init__(self, value: str | None) -> None:
        self.value = value


def _error(status: int, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "field": field}}, status_code=status)


#: `DELETE /v1/watches/{kind}/…`: the first segments that name another source's watch.
OBJECT_KINDS = frozenset(TYPES) | {"discover"}

#: Watches per page of /status and GET /v1/watches: `?limit=` up to MAX_PAGE.
PAGE, MAX_PAGE = 100, 1000


async def _watch_page(watcher: Watcher, request: Request) -> dict[str, object] | JSONResponse:
    """`?limit=N&after=CURSOR&all=1`: a page of watches and the cursor of the next, or a 422."""
    q = request.query_params
    raw = q.get("limit", str(PAGE))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        return _error(422, f"limit must be a whole number from 1 to {MAX_PAGE}", "limit")
    after: tuple[str, str] | None = None
    if "after" in q:
        thread_id, _, run_id = q["after"].partition("/")
        scope_ok = is_valid_id(thread_id.replace(":", "_", 1))  # "response:" keys too
        if not scope_ok or (run_id and not is_valid_id(run_id)):
            return _error(422, "after must be the `next` of the previous page", "after")
        after = (thread_id, run_id)
    finished = q.get("all", "0").lower() in ("1", "true", "yes")
    watches, last = await watcher.watches(finished=finished, after=after, limit=int(raw))
    return {"watches": [shown(w) for w in watches], "next": "/".join(last) if last else None}


def create_http_app(
    watcher: Watcher,
    metrics: Metrics,
    *,
    token: str | BearerToken | None,
    webhook_depth: DepthFn | None = None,
    hosts: Iterable[str] | None = None,
    max_watches: int | None = None,
) -> Starlette:
    """`hosts`: the Host names served (None: any); `max_watches`: a cap on the watches."""
    bearer = token if isinstance(token, BearerToken) else BearerToken(token)

    def protected(handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            if (expected := bearer.value) is not None:
                given = request.headers.get("authorization", "")
                if not bearer_matches(given, expected):
                    return _error(401, "a bearer token is required")
            return await handler(request)

        return guarded

    async def livez(request: Request) -> Response:
        health = watcher.health()
        return JSONResponse(health, status_code=200 if health["alive"] else 503)

    async def readyz(request: Request) -> Response:
        return JSONResponse({"ready": watcher.ready}, status_code=200 if watcher.ready else 503)

    async def _refresh_gauges() -> dict[str, int]:
        counts = watcher.counts()
        metrics.watched_runs.set(counts["runs"])
        metrics.watched_threads.set(counts["threads"])
        metrics.poll_lag.set(watcher.lag())
        waiting = watcher.waiting()
        metrics.polls_in_flight.set(waiting["polls_in_flight"])
        metrics.oldest_poll_in_flight.set(waiting["oldest_poll_in_flight_seconds"])
        metrics.api_paused.set(waiting["api_paused_for_seconds"])
        depth = await webhook_depth() if webhook_depth else {"pending": 0, "dead": 0}
        for state, n in depth.items():
            metrics.webhook_queue.labels(state=state).set(n)
        return depth

    async def metrics_endpoint(request: Request) -> Response:
        await _refresh_gauges()
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def status(request: Request) -> Response:
        page = await _watch_page(watcher, request)
        if isinstance(page, JSONResponse):
            return page
        depth = await _refresh_gauges()
        h = metrics.health
        return JSONResponse(
            {
                **watcher.health(),
                "watched": watcher.counts(),
                "watches": page["watches"],
                "watches_next": page["next"],
                "webhook_queue": depth,
                "poll": watcher.poll_in_force(),
                "replica": watcher.replica(),
                "upstream": {
                    "last_success": h.last_success,
                    "consecutive_failures": h.consecutive_failures,
                    "auth_refused": h.auth_refused,
                    "requests": h.requests,
                },
            }
        )

    async def list_watches(request: Request) -> Response:
        page = await _watch_page(watcher, request)
        return page if isinstance(page, JSONResponse) else JSONResponse(page)

    async def add_watch(request: Request) -> Response:
        try:
            body: Any = json.loads(await request.body())
        except (ValueError, RecursionError):  # RecursionError: nested too deep
            return _error(422, "the body must be a JSON object", None)
        if not isinstance(body, dict):
            return _error(422, "the body must be a JSON object", None)
        if not set(body) <= {"thread_id", "run_id"}:  # another source's watch
            return await _add_object_watch(body)
        unknown = set(body) - {"thread_id", "run_id"}
        if unknown:
            return _error(422, f"unknown field {sorted(unknown)[0]!r}", sorted(unknown)[0])
        thread_id, run_id = body.get("thread_id"), body.get("run_id")
        if not is_valid_id(thread_id):
            return _error(
                422, "thread_id must be a plain ID (letters, digits, _ and -)", "thread_id"
            )
        if run_id is not None and not is_valid_id(run_id):
            return _error(422, "run_id must be a plain ID (letters, digits, _ and -)", "run_id")
        if max_watches is not None and await _is_full(str(thread_id), run_id, max_watches):
            return _error(507, f"too many watches (max_watches = {max_watches}); delete some")
        created = await watcher.add_watch(str(thread_id), run_id and str(run_id), source="api")
        return JSONResponse(
            {"thread_id": thread_id, "run_id": run_id, "created": created},
            status_code=201 if created else 200,
        )

    async def _add_object_watch(body: dict[str, Any]) -> Response:
        try:
            scope, object_id = parse_body(body)
        except BodyError as exc:
            return _error(422, str(exc), exc.field)
        if max_watches is not None and await _is_full(scope, object_id, max_watches):
            return _error(507, f"too many watches (max_watches = {max_watches}); delete some")
        created = await watcher.add_watch(scope, object_id, source="api")
        return JSONResponse({**body, "created": created}, status_code=201 if created else 200)

    async def _is_full(thread_id: str, run_id: object, cap: int) -> bool:
        """At the cap, and this watch is not one of them (adding it again is fine)."""
        return await watcher.at_capacity(thread_id, str(run_id) if run_id else None, cap)

    async def delete_watch(request: Request) -> Response:
        thread_id = request.path_params["thread_id"]
        run_id = request.path_params.get("run_id")
        if thread_id in OBJECT_KINDS:  # /v1/watches/{kind}/{id}: another source's watch
            ids = [
                request.path_params[k] for k in ("run_id", "object_id") if k in request.path_params
            ]
            key = delete_key(thread_id, *ids)
            if key is None:
                return _error(404, "no such watch")
            thread_id, run_id = key
        elif "object_id" in request.path_params:
            return _error(404, "no such watch")
        else:
            for name, value in (("thread_id", thread_id), ("run_id", run_id)):
                if value is not None and not is_valid_id(value):
                    return _error(422, f"{name} must be a plain ID", name)
        if not await watcher.remove_watch(thread_id, run_id):
            return _error(404, "no such watch")
        return Response(status_code=204)

    routes = [
        Route("/livez", livez),
        Route("/healthz", livez),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint),
        Route("/status", protected(status)),
        Route("/v1/watches", protected(list_watches), methods=["GET"]),
        Route("/v1/watches", protected(add_watch), methods=["POST"]),
        Route("/v1/watches/{thread_id}", protected(delete_watch), methods=["DELETE"]),
        Route("/v1/watches/{thread_id}/{run_id}", protected(delete_watch), methods=["DELETE"]),
        Route(
            "/v1/watches/{thread_id}/{run_id}/{object_id}",
            protected(delete_watch),
            methods=["DELETE"],
        ),
    ]
    return Starlette(routes=routes, middleware=[Middleware(RequestGuard, hosts=hosts)])
