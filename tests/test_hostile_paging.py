"""Lists without end from a hostile API (a small Starlette app, in-process over
`httpx.ASGITransport`, the whole daemon around it): pages bounded per poll, repeated cursors
detected, the next poll carrying on where the last page ended."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from structlog.testing import capture_logs

from watcher.config.settings import Settings
from watcher.service.daemon import serve

pytestmark = pytest.mark.anyio

Pager = Callable[[str | None], tuple[list[dict[str, Any]], bool]]


def step(sid: str, status: str = "completed") -> dict[str, Any]:
    return {"id": sid, "object": "thread.run.step", "status": status, "run_id": "run_a"}


def run(rid: str, status: str = "in_progress") -> dict[str, Any]:
    return {"id": rid, "object": "thread.run", "status": status, "created_at": 2_000_000_000}


class Hostile:
    """An API whose run is `run_status` and whose lists are what `steps` / `runs` say."""

    def __init__(self, steps: Pager, runs: Pager | None = None, run_status="in_progress"):
        self.requests: list[tuple[str, str | None]] = []  # (path, after)
        self.changed = anyio.Event()

        def listing(pager: Pager) -> Callable[[Request], Any]:
            async def handler(request: Request) -> JSONResponse:
                after = request.query_params.get("after")
                await self._seen(request.url.path, after)
                items, more = pager(after)
                last = items[-1]["id"] if items else None
                body = {"object": "list", "data": items, "last_id": last, "has_more": more}
                return JSONResponse(body)

            return handler

        async def get_run(request: Request) -> JSONResponse:
            await self._seen(request.url.path, None)
            status = run_status() if callable(run_status) else run_status
            return JSONResponse(run(request.path_params["run_id"], status))

        routes = [
            Route("/v1/threads/{t}/runs/{run_id}/steps", listing(steps)),
            Route("/v1/threads/{t}/runs/{run_id}", get_run),
        ]
        if runs is not None:
            routes.append(Route("/v1/threads/{t}/runs", listing(runs)))
        self.app = Starlette(routes=routes)

    async def _seen(self, path: str, after: str | None) -> None:
        await anyio.sleep(0)  # a real yield: a watcher that loops for ever can be cancelled
        self.requests.append((path, after))
        self.changed.set()
        self.changed = anyio.Event()

    def count(self, suffix: str) -> int:
        return sum(1 for path, _ in self.requests if path.endswith(suffix))

    def polls(self) -> list[list[str | None]]:
        """The `after` of each steps request, grouped by the run GET before them."""
        out: list[list[str | None]] = []
        for path, after in self.requests:
            if path.endswith("/runs/run_a"):
                out.append([])
            elif path.endswith("/steps") and out:
                out[-1].append(after)
        return out


def settings(tmp_path, watch: dict[str, str], *, extra=None, **poll: Any) -> Settings:
    return Settings.model_validate(
        (extra or {})
        | {
            "api": {"base_url": "http://127.0.0.1/v1"},
            "poll": {"interval": 0.01, "max_interval": 0.02, "max_requests_per_second": 1e5} | poll,
            "retry": {"attempts": 1},
            "state": {"path": str(tmp_path / "s.db")},
            "watch": [watch],
        }
    )


async def until(api: Hostile, done: Callable[[], bool], cfg: Settings, *, exit_when_done=False):
    out = io.StringIO()
    with anyio.fail_after(30), capture_logs() as logs:
        async with anyio.create_task_group() as tg:

            async def watcher() -> None:
                await serve(
                    cfg, transport=httpx.ASGITransport(app=api.app), stdout=out,
                    handle_signals=False, exit_when_done=exit_when_done,
                )  # fmt: skip
                tg.cancel_scope.cancel()

            tg.start_soon(watcher)
            while not done():
                await api.changed.wait()
            if not exit_when_done:
                tg.cancel_scope.cancel()
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    return events, [e for e in logs if "stopped early" in e["event"]]


async def test_cursors_that_alternate_are_detected_and_the_poll_ends(tmp_path):
    """`last_id` going A, B, A, B… with `has_more: true`: ~15 requests/s for ever, before."""

    def alternate(after: str | None):
        sid = "step_b" if after == "step_a" else "step_a"
        return [step(sid, "in_progress")], True

    api = Hostile(alternate)
    cfg = settings(tmp_path, {"thread_id": "thread_a", "run_id": "run_a"})
    events, said = await until(api, lambda: api.count("/runs/run_a") >= 4, cfg)
    polls = api.polls()[:3]
    assert all(p == [None, "step_a", "step_b"] for p in polls), polls
    assert len(said) == 1 and "cursor" in said[0]["reason"]  # once per watch
    assert sorted(e["data"]["id"] for e in events) == ["run_a", "step_a", "step_b"]


async def test_a_list_without_end_is_read_max_pages_per_poll_and_carried_on(tmp_path):
    """Fresh ids for ever: memory grew ~16 MB/s and the first poll never ended."""

    def fresh(after: str | None):
        start = int(after.split("_")[1]) + 1 if after else 0
        return [step(f"step_{i:06d}") for i in range(start, start + 100)], True

    api = Hostile(fresh)
    cfg = settings(tmp_path, {"thread_id": "thread_a", "run_id": "run_a"}, max_pages=3)
    events, said = await until(api, lambda: api.count("/runs/run_a") >= 3, cfg)
    first, second = api.polls()[:2]
    assert first == [None, "step_000099", "step_000199"]
    assert second == ["step_000299", "step_000399", "step_000499"]  # where the last ended
    assert len(said) == 1 and "max_pages (3)" in said[0]["reason"]
    assert len({e["data"]["id"] for e in events}) >= 601  # 600 steps and the run


async def test_a_long_finite_list_is_read_over_several_polls_to_the_run_end(tmp_path):
    """500 steps, 2 pages a poll, step_000 still running at first: all reported, then done."""
    polls = {"n": 0}

    def finite(after: str | None):
        start = int(after.split("_")[1]) + 1 if after else 0
        if start == 0:
            polls["n"] += 1
        items = [step(f"step_{i:06d}") for i in range(start, min(start + 100, 500))]
        if start == 0 and polls["n"] < 3:
            items[0] = step("step_000000", "in_progress")
        return items, start + 100 < 500

    api = Hostile(finite, run_status="completed")
    cfg = settings(tmp_path, {"thread_id": "thread_a", "run_id": "run_a"}, max_pages=2)
    events, said = await until(api, lambda: False, cfg, exit_when_done=True)
    pairs = {(e["data"]["id"], e["data"]["status"]) for e in events}
    assert {(f"step_{i:06d}", "completed") for i in range(500)} <= pairs
    assert ("step_000000", "in_progress") in pairs and ("run_a", "completed") in pairs
    order = [e["data"]["id"] for e in events]
    assert order.index("run_a") == len(order) - 1 or order[-1] == "run_a"
    assert len(said) == 1


async def test_a_thread_whose_run_list_never_ends_still_gets_its_runs_watched(tmp_path):
    """Before, the first listing never ended: every run of the thread went unwatched."""

    def runs(after: str | None):
        start = int(after.split("_")[1]) + 1 if after else 0
        return [run(f"run_{i:06d}") for i in range(start, start + 100)], True

    api = Hostile(lambda after: ([], False), runs=runs)
    cfg = settings(tmp_path, {"thread_id": "thread_a"}, max_pages=2, interval=0.2, max_interval=0.4)

    def listings() -> list[str | None]:
        return [after for path, after in api.requests if path.endswith("/thread_a/runs")]

    _events, said = await until(
        api, lambda: api.count("/runs/run_000150") >= 1 and len(listings()) >= 4, cfg
    )
    # each poll: the newest runs (up to one already seen), then the backlog where it ended
    assert listings()[:4] == [None, "run_000099", None, "run_000199"]
    assert api.count("/runs/run_000000") >= 1  # the runs found are watched
    assert len(said) == 1 and "max_pages (2)" in said[0]["reason"]
