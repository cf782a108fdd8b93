"""A source the daemon has never heard of is watched by the same core, store and delivery.

The object type is defined here, in the test (a video job: `GET /v1/videos/{id}`); nothing
in `watcher/core`, `watcher/state` or `watcher/delivery` lists types, so the poller, the
pure core, the recorder and the SQLite store follow it as they follow a run. In-process
over `httpx.ASGITransport` to a one-route app."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes import FakeClock
from tests.inproc import Lines, sim_client
from watcher.config.settings import Settings
from watcher.sources.kinds import Kind, ObjectType
from watcher.sources.single import ObjectSource
from watcher.state.store import Store
from watcher.watching.app import Watcher
from watcher.watching.watch_state import RunState

pytestmark = pytest.mark.anyio

VIDEO = ObjectType(
    name="video",
    kind=Kind(
        "video",
        ("queued", "in_progress", "completed", "failed"),
        frozenset({"completed", "failed"}),
        success=frozenset({"completed"}),
    ),
    id_prefix="video_",
    path=("videos", "{}"),
)


def video_app(status: list[str]) -> Starlette:
    async def get_video(request: Request) -> JSONResponse:
        vid = request.path_params["video_id"]
        return JSONResponse({"id": vid, "object": "video", "status": status[0], "progress": 0})

    return Starlette(routes=[Route("/v1/videos/{video_id}", get_video)])


async def test_a_source_defined_outside_the_daemon_is_watched_to_its_end(tmp_path):
    status = ["queued"]
    client, seen = sim_client(video_app(status))
    store, lines = Store(tmp_path / "s.db"), Lines()
    watcher = Watcher(
        Settings(api=client.api), client=client, store=store, clock=FakeClock(), sinks=[lines]
    )
    state = RunState(
        thread_id="", run_id="video_1", include=(), cursor=None, known={},
        delay=1.0, last_change=0.0, source=ObjectSource(VIDEO),
    )  # fmt: skip
    delays = []
    for now in ("queued", "in_progress", "completed", "completed"):
        status[0] = now
        delays.append(await watcher.poller.poll_run(state))
    assert delays[-2] is not None and delays[-1] is None  # ends once a poll confirms it
    assert [e["type"] for e in lines.events] == [
        "video.queued",
        "video.in_progress",
        "video.completed",
    ]
    assert [e["previous_status"] for e in lines.events] == [None, "queued", "in_progress"]
    assert {e["data"]["id"] for e in lines.events} == {"video_1"}
    outcome = watcher.outcomes[("", "video_1")]
    assert (outcome.status, outcome.exit_code) == ("completed", 0)
    assert {r.url.path for r in seen} == {"/v1/videos/video_1"}
    assert not any("openai-beta" in r.headers for r in seen)
    # the store kept its statuses as it keeps a run's: a watch that starts again from them
    # (after a restart) reports none of them twice
    known = store.known_states("", "video_1")
    assert known["video_1"].seen == {"queued", "in_progress", "completed"}
    again = RunState(
        thread_id="", run_id="video_1", include=(), cursor=None, known=known,
        delay=1.0, last_change=0.0, source=ObjectSource(VIDEO),
    )  # fmt: skip
    await watcher.poller.poll_run(again)
    assert len(lines.events) == 3
    store.close()
    await client.aclose()
