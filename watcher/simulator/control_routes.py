"""The simulator's control routes under /_sim, with no auth: advance the clock, inject
faults, read stats, transitions and the scenario."""

from __future__ import annotations

import json
import time
from typing import Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from watcher.simulator.clocks import ManualClock, SimClock
from watcher.simulator.faults import FaultQueue, parse_faults
from watcher.simulator.state import RUN_TERMINAL, World

__all__ = ["Host", "control_routes"]


class Host(Protocol):
    """What the routes need of the simulator app."""

    @property
    def world(self) -> World: ...
    @property
    def clock(self) -> SimClock: ...
    @property
    def faults(self) -> FaultQueue: ...
    @property
    def requests(self) -> int: ...
    @property
    def by_route(self) -> dict[str, int]: ...
    @property
    def by_status(self) -> dict[str, int]: ...
    @property
    def by_run(self) -> dict[str, int]: ...
    @property
    def last_poll(self) -> dict[str, float]: ...
    @property
    def thread_of(self) -> dict[str, str]: ...
    @property
    def max_gap(self) -> dict[str, float]: ...


def open_poll_gap(sim: Host) -> float:
    """The longest time since the last GET of a run that has not ended: a starved run."""
    now, t = time.monotonic(), sim.clock.now()
    gaps = [
        now - last
        for run_id, last in sim.last_poll.items()
        if (run := sim.world.run(sim.thread_of[run_id], run_id, t)) is not None
        and run["status"] not in RUN_TERMINAL
    ]
    return max(gaps, default=0.0)


def control_routes(sim: Host) -> list[Route]:
    """`POST /_sim/advance`, `POST /_sim/faults`, `GET /_sim/stats`, `/_sim/transitions`,
    `/_sim/scenario`."""

    async def advance(request: Request) -> Response:
        clock = sim.clock
        if not isinstance(clock, ManualClock):
            return JSONResponse({"error": "the clock is real: nothing to advance"}, status_code=409)
        try:
            seconds = json.loads(await request.body() or b"{}").get("seconds", 0)
            return JSONResponse({"now": clock.advance(float(seconds))})
        except (ValueError, TypeError, AttributeError) as exc:
            return JSONResponse({"error": f"seconds: {exc}"}, status_code=400)

    async def add_faults(request: Request) -> Response:
        try:
            sim.faults.add(parse_faults(json.loads(await request.body())))
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        return Response(status_code=204)

    async def stats(request: Request) -> Response:
        return JSONResponse(
            {
                "requests": sim.requests,
                "by_route": sim.by_route,
                "by_status": sim.by_status,
                "faults_injected": sim.faults.injected,
                "faults_pending": sim.faults.pending(),
                "max_poll_gap": max(sim.max_gap.values(), default=0.0),
                "open_poll_gap": open_poll_gap(sim),
                "polled_runs": len(sim.last_poll),
                "by_run": sim.by_run,
            }
        )

    async def transitions(request: Request) -> Response:
        now = sim.clock.now()
        return JSONResponse({"now": now, "transitions": sim.world.transitions_until(now)})

    async def scenario(request: Request) -> Response:
        scenario = sim.world.scenario
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

    return [
        Route("/_sim/advance", advance, methods=["POST"]),
        Route("/_sim/faults", add_faults, methods=["POST"]),
        Route("/_sim/stats", stats),
        Route("/_sim/transitions", transitions),
        Route("/_sim/scenario", scenario),
    ]
