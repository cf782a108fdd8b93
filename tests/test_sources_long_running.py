"""The single-object sources (responses, batches, fine-tuning jobs, file batches) fit the
`Source` protocol: in-process over ASGI to the simulator, which serves these objects."""

from __future__ import annotations

import httpx
import pytest

from tests.fakes import FakeClock
from tests.inproc import Lines, sim_client
from watcher.api.client import ApiClient
from watcher.api.ratelimit import RateGate
from watcher.config.settings import ApiSettings, RetrySettings, Settings
from watcher.core.errors import NotFoundError
from watcher.simulator.app import ManualClock, create_app
from watcher.simulator.scenario import parse_scenario
from watcher.sources.base import Source
from watcher.sources.kinds import TYPES, type_of_id
from watcher.sources.single import SOURCES
from watcher.state.store import Store
from watcher.watching.app import Watcher
from watcher.watching.watch_state import RunState

pytestmark = pytest.mark.anyio

EPOCH = 1_732_450_000  # the fake clock's wall time: the simulator's time zero
RAW = {
    "epoch": EPOCH,
    "responses": [
        {"id": "resp_ok", "timeline": [["queued", 0], ["in_progress", 1], ["completed", 4]]},
        {"id": "resp_gone", "timeline": [["queued", 0], ["completed", 1]], "gone_at": 3},
        {"id": "resp_flip", "timeline": [["in_progress", 0], ["cancelled", 2], ["completed", 3]]},
    ],
    "batches": [
        {"id": "batch_old", "timeline": [["validating", 0], ["failed", 1]]},
        {
            "id": "batch_busy",
            "timeline": [["validating", 0], ["in_progress", 1], ["completed", 40]],
        },
        {"id": "batch_new", "timeline": [["validating", 20], ["completed", 25]]},
    ],
    "fine_tuning_jobs": [
        {"id": "ftjob-ok", "timeline": [["validating_files", 0], ["running", 2], ["succeeded", 6]]}
    ],
    "file_batches": [
        {
            "id": "vsfb_ok",
            "vector_store_id": "vs_docs",
            "timeline": [["in_progress", 0], ["completed", 4]],
        }
    ],
}


def world():
    clock = ManualClock()
    app = create_app(parse_scenario(RAW), clock=clock)
    client, seen = sim_client(app)
    return clock, client, seen


async def observe(source: Source, client: ApiClient, *path: str, previous: str | None = None):
    return await source.observe(
        client, path, cursor=None, include=(), previous_status=previous, resume=None, max_pages=1
    )


async def test_a_background_response_from_queued_to_completed():
    clock, client, seen = world()
    source = SOURCES["response"]
    statuses: list[tuple[str, bool]] = []
    for t in (0.5, 2, 5, 6):
        clock.advance(t - clock.now())
        obs = await observe(
            source, client, "resp_ok", previous=statuses[-1][0] if statuses else None
        )
        [obj] = obs.objects
        assert (obj.kind, obj.object_id, obj.scope, obj.watch) == (
            "response",
            "resp_ok",
            "",
            "resp_ok",
        )
        statuses.append((obs.status, obs.done))
    # a terminal status ends the watch once a second poll confirms it
    assert statuses == [
        ("queued", False),
        ("in_progress", False),
        ("completed", False),
        ("completed", True),
    ]
    assert source.kinds[source.root].succeeded("completed")
    assert {r.url.path for r in seen} == {"/v1/responses/resp_ok"}
    assert not any("openai-beta" in r.headers for r in seen)  # only Assistants needs it


async def test_every_type_reaches_its_end_on_its_own_path():
    clock, client, seen = world()
    clock.advance(50)
    ends = {}
    for name, path in [
        ("batch", ("batch_busy",)),
        ("fine_tuning_job", ("ftjob-ok",)),
        ("file_batch", ("vs_docs", "vsfb_ok")),
    ]:
        first = await observe(SOURCES[name], client, *path)
        obs = await observe(SOURCES[name], client, *path, previous=first.status)
        kind = TYPES[name].kind
        assert obs.done and kind.succeeded(obs.status) and obs.objects[0].kind == kind.object
        assert type_of_id(path[-1]) is TYPES[name]
        ends[name] = obs.objects[0].scope
    assert ends == {"batch": "", "fine_tuning_job": "", "file_batch": "vs_docs"}
    assert [r.url.path for r in seen][::2] == [
        "/v1/batches/batch_busy",
        "/v1/fine_tuning/jobs/ftjob-ok",
        "/v1/vector_stores/vs_docs/file_batches/vsfb_ok",
    ]


async def test_a_response_gone_past_its_retention_is_not_found():
    clock, client, _seen = world()
    clock.advance(5)
    with pytest.raises(NotFoundError):
        await observe(SOURCES["response"], client, "resp_gone")


async def test_batches_are_discovered_newest_first_never_the_finished_ones():
    clock, client, _seen = world()
    source = SOURCES["batch"]
    clock.advance(10)
    position = {"resume": None, "max_pages": 10}
    found = await source.discover(
        client, None, seen=set(), first=True, started_at=EPOCH + 5.0, **position
    )
    assert found.new == ["batch_busy"] and found.ignored == ["batch_old"]
    clock.advance(20)
    seen = {"batch_old", "batch_busy"}
    found = await source.discover(
        client, None, seen=seen, first=False, started_at=EPOCH + 5.0, **position
    )
    assert found.new == ["batch_new"] and found.ignored == []
    with pytest.raises(TypeError):
        await SOURCES["response"].discover(
            client, None, seen=set(), first=True, started_at=0.0, **position
        )


async def test_the_poller_follows_a_response_with_no_change_to_the_core(tmp_path):
    """A watch whose source is another: the same poller, pure core and recorder report it."""

    clock, client, seen = world()
    store, lines = Store(tmp_path / "s.db"), Lines()
    watcher = Watcher(
        Settings(api=client.api), client=client, store=store, clock=FakeClock(), sinks=[lines]
    )
    state = RunState(
        thread_id="",
        run_id="resp_ok",
        include=(),
        cursor=None,
        known={},
        delay=1.0,
        last_change=0.0,
        source=SOURCES["response"],
    )
    delays = []
    for t in (0.5, 2, 5, 6):
        clock.advance(t - clock.now())
        delays.append(await watcher.poller.poll_run(state))
    assert delays[-2] is not None and delays[-1] is None  # ends once confirmed
    assert [e["type"] for e in lines.events] == [
        "response.queued",
        "response.in_progress",
        "response.completed",
    ]
    assert [e["previous_status"] for e in lines.events] == [None, "queued", "in_progress"]
    outcome = watcher.outcomes[("", "resp_ok")]
    assert (outcome.status, outcome.exit_code) == ("completed", 0)
    assert not any("openai-beta" in r.headers for r in seen)
    store.close()
    await client.aclose()


async def test_a_status_after_a_terminal_one_is_reported(tmp_path):
    """Azure's cancelled background response that completes later: the terminal status gets
    one confirming poll, which sees the new one; the watch ends when a poll confirms it."""

    clock, client, _seen = world()
    store, lines = Store(tmp_path / "s.db"), Lines()
    watcher = Watcher(
        Settings(api=client.api), client=client, store=store, clock=FakeClock(), sinks=[lines]
    )
    state = RunState(
        thread_id="response:", run_id="resp_flip", include=(), cursor=None, known={},
        delay=1.0, last_change=0.0, source=SOURCES["response"],
    )  # fmt: skip
    delays = []
    for t in (2.5, 3.5, 4.5):
        clock.advance(t - clock.now())
        delays.append(await watcher.poller.poll_run(state))
    assert delays[0] is not None and delays[1] is not None and delays[2] is None
    assert [e["type"] for e in lines.events] == ["response.cancelled", "response.completed"]
    outcome = watcher.outcomes[("response:", "resp_flip")]
    assert (outcome.status, outcome.exit_code) == ("completed", 0)
    store.close()
    await client.aclose()


async def test_a_batch_still_running_hours_after_it_began_is_found_on_a_later_page():
    """Batches run for up to a day: the first listing looks back that far, past a page
    whose oldest batch is more than an hour old, for one still in progress."""
    start = 1_780_000_000
    done = [
        {"id": f"batch_{i:03}", "object": "batch", "status": "completed",
         "created_at": start - 60 * i}
        for i in range(1, 101)
    ]  # fmt: skip
    busy = {"id": "batch_busy", "object": "batch", "status": "in_progress",
            "created_at": start - 5 * 3600}  # fmt: skip

    def handler(request: httpx.Request) -> httpx.Response:
        after = request.url.params.get("after")
        items = done if after is None else [busy] if after == "batch_100" else []
        last = items[-1]["id"] if items else None
        page = {"object": "list", "data": items, "has_more": after is None, "last_id": last}
        return httpx.Response(200, json=page)

    client = ApiClient(
        ApiSettings(base_url="https://api.example.test/v1", api_key="sk-test-0000"),
        RetrySettings(attempts=1),
        clock=FakeClock(),
        gate=RateGate(FakeClock(), rate=1e6),
        transport=httpx.MockTransport(handler),
    )
    found = await SOURCES["batch"].discover(
        client, None, seen=set(), first=True, started_at=float(start), resume=None, max_pages=10
    )
    assert found.new == ["batch_busy"] and len(found.ignored) == 100
    await client.aclose()
