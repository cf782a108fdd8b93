"""The simulator: statuses over time, cursors, checks, faults, generated scenarios."""

from __future__ import annotations

import functools
import json
import socket
import time

import anyio
import httpx
import pytest

from watcher.simulator.app import ManualClock, RealClock, create_app
from watcher.simulator.scenario import (
    ScenarioError,
    default_scenario,
    generate_scenario,
    load_scenario,
    parse_scenario,
)
from watcher.simulator.server import serve
from watcher.simulator.state import PageQuery, World, page_positions

HEADERS = {"OpenAI-Beta": "assistants=v2"}
EPOCH = 1_732_450_000
BETA_ERROR = {
    "error": {
        "message": "You must provide the 'OpenAI-Beta' header to access the Assistants API. "
        "Please try again by setting the header 'OpenAI-Beta: assistants=v2'.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_beta",
    }
}


def raw_scenario(n_steps: int = 3):
    steps = [
        {"id": f"step_{i:03d}", "timeline": [["in_progress", i * 0.01], ["completed", 5]]}
        for i in range(n_steps)
    ]
    return {
        "epoch": EPOCH,
        "threads": [
            {
                "id": "thread_1",
                "runs": [
                    {
                        "id": "run_1",
                        "timeline": [["queued", 0], ["in_progress", 1], ["completed", 5]],
                        "steps": steps,
                        "poll_after_ms": 1500,
                    },
                    {"id": "run_2", "timeline": [["queued", 3], ["completed", 4]]},
                ],
            },
            {"id": "thread_2", "runs": []},
        ],
    }


def scenario(n_steps: int = 3):
    return parse_scenario(raw_scenario(n_steps))


def client(app, **kw):
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://sim/v1",
        headers=kw.pop("headers", HEADERS),
        **kw,
    )


def control(app):
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim/_sim")


def ids(page):
    return [x["id"] for x in page["data"]]


@pytest.mark.anyio
async def test_statuses_move_with_the_clock():
    clock = ManualClock()
    async with client(create_app(scenario(), clock=clock)) as c:
        run = (await c.get("/threads/thread_1/runs/run_1")).json()
        assert (run["status"], run["created_at"], run["started_at"]) == ("queued", EPOCH, None)
        assert run["usage"] is None and run["expires_at"] == EPOCH + 600
        assert (await c.get("/threads/thread_1/runs/run_2")).status_code == 404  # not yet
        assert ids((await c.get("/threads/thread_1/runs")).json()) == ["run_1"]
        clock.advance(3.5)
        r = await c.get("/threads/thread_1/runs/run_1")
        assert (r.json()["status"], r.json()["started_at"]) == ("in_progress", EPOCH + 1)
        assert r.headers["openai-poll-after-ms"] == "1500"
        assert "openai-poll-after-ms" not in (await c.get("/threads/thread_1/runs/run_2")).headers
        assert ids((await c.get("/threads/thread_1/runs")).json()) == ["run_2", "run_1"]
        clock.advance(2)
        run = (await c.get("/threads/thread_1/runs/run_1")).json()
        assert (run["status"], run["completed_at"], run["expires_at"]) == (
            "completed",
            EPOCH + 5,
            None,
        )
        assert run["usage"] == {"prompt_tokens": 300, "completion_tokens": 60, "total_tokens": 360}


@pytest.mark.anyio
async def test_stats_show_a_run_left_unpolled_until_it_ends():
    clock = ManualClock()
    app = create_app(scenario(), clock=clock)
    async with client(app) as c, control(app) as ctl:
        assert (await ctl.get("/stats")).json()["open_poll_gap"] == 0.0  # nothing polled yet
        await c.get("/threads/thread_1/runs/run_1")
        stats = (await ctl.get("/stats")).json()
        assert stats["polled_runs"] == 1 and stats["open_poll_gap"] > 0.0  # still queued
        clock.advance(6)  # run_1 has completed: not polled since, and rightly so
        assert (await ctl.get("/stats")).json()["open_poll_gap"] == 0.0


def test_each_status_carries_its_fields():
    raw = {
        "epoch": EPOCH,
        "threads": [
            {
                "id": "thread_1",
                "runs": [
                    {
                        "id": f"run_{final}",
                        "timeline": [["queued", 0], ["in_progress", 1], [final, 2]],
                        "steps": [
                            {
                                "id": "step_1",
                                "type": "tool_calls",
                                "tools": ["code_interpreter", "file_search", "function"],
                                "timeline": [["in_progress", 1], [step_final, 2]],
                                "usage": {"prompt_tokens": 7, "completion_tokens": 3},
                            }
                        ],
                    }
                    for final, step_final in [
                        ("requires_action", "in_progress"),
                        ("failed", "failed"),
                        ("cancelled", "cancelled"),
                        ("expired", "expired"),
                        ("incomplete", "completed"),
                        ("paused_for_review", "in_progress"),  # a future status passes through
                    ]
                ],
            }
        ],
    }
    world = World(parse_scenario(raw), EPOCH)
    run = functools.partial(world.run, "thread_1")
    action = run("run_requires_action", 2)["required_action"]
    assert action["type"] == "submit_tool_outputs"
    assert action["submit_tool_outputs"]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert run("run_requires_action", 2)["usage"] is None
    assert run("run_failed", 2)["last_error"]["code"] == "server_error"
    assert run("run_failed", 2)["failed_at"] == EPOCH + 2
    assert run("run_cancelled", 2)["cancelled_at"] == EPOCH + 2
    assert run("run_expired", 2)["expires_at"] == EPOCH + 2
    assert run("run_incomplete", 2)["incomplete_details"] == {"reason": "max_completion_tokens"}
    assert run("run_incomplete", 2)["usage"]["total_tokens"] == 10
    assert run("run_paused_for_review", 2)["status"] == "paused_for_review"
    assert run("run_failed", 1.5)["last_error"] is None
    tools = [t["type"] for t in run("run_failed", 2)["tools"]]
    assert tools == ["code_interpreter", "file_search", "function"]
    step = world.step("thread_1", "run_failed", "step_1", 2)
    assert (step["failed_at"], step["last_error"]["code"]) == (EPOCH + 2, "server_error")
    assert step["usage"] == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    assert world.step("thread_1", "run_expired", "step_1", 2)["expired_at"] == EPOCH + 2
    live = world.step("thread_1", "run_failed", "step_1", 1.5)
    assert live["usage"] is None
    calls = {c["type"]: c for c in live["step_details"]["tool_calls"]}
    assert calls["function"]["function"]["output"] is None
    assert calls["code_interpreter"]["code_interpreter"]["outputs"] == []
    assert calls["file_search"]["file_search"] == {}
    done = world.step("thread_1", "run_incomplete", "step_1", 2, content=True)
    calls = {c["type"]: c for c in done["step_details"]["tool_calls"]}
    assert calls["file_search"]["file_search"]["results"][0]["content"][0]["type"] == "text"
    assert calls["function"]["function"]["output"] is not None


@pytest.mark.anyio
async def test_paging_over_250_steps_with_after_and_before():
    clock = ManualClock()
    clock.advance(4)
    everything = [f"step_{i:03d}" for i in range(250)]
    async with client(create_app(scenario(250), clock=clock)) as c:
        url = "/threads/thread_1/runs/run_1/steps"
        for order, expected in (("asc", everything), ("desc", everything[::-1])):
            seen, params = [], {"order": order, "limit": 100}
            while True:
                page = (await c.get(url, params=params)).json()
                seen += ids(page)
                assert (page["first_id"], page["last_id"]) == (page["data"][0]["id"], seen[-1])
                if not page["has_more"]:
                    break
                params["after"] = page["last_id"]
            assert seen == expected and len(seen) == 250
        # before: the page just before the cursor, in list order
        back = (await c.get(url, params={"order": "asc", "before": "step_005", "limit": 3})).json()
        assert (ids(back), back["has_more"]) == (["step_002", "step_003", "step_004"], True)
        back = (await c.get(url, params={"order": "asc", "before": "step_002"})).json()
        assert (ids(back), back["has_more"]) == (["step_000", "step_001"], False)
        back = (await c.get(url, params={"before": "step_245", "limit": 2})).json()  # desc
        assert ids(back) == ["step_247", "step_246"]
        both = {"order": "asc", "after": "step_010", "before": "step_014"}
        assert ids((await c.get(url, params=both)).json()) == ["step_011", "step_012", "step_013"]
        assert len(ids((await c.get(url)).json())) == 20  # default limit
        empty = (await c.get(url, params={"after": "step_000"})).json()  # desc: nothing after
        assert empty == {
            "object": "list",
            "data": [],
            "first_id": None,
            "last_id": None,
            "has_more": False,
        }
        unknown = (await c.get(url, params={"after": "step_nope"})).json()
        assert unknown["data"] == []


def test_page_positions_table():
    pos = {f"o{i}": i for i in range(10)}
    cases = [
        (PageQuery(limit=3, order="asc"), 10, [0, 1, 2], True),
        (PageQuery(limit=3, order="desc"), 10, [9, 8, 7], True),
        (PageQuery(limit=3, order="asc", after="o7"), 10, [8, 9], False),
        (PageQuery(limit=3, order="desc", after="o2"), 10, [1, 0], False),
        (PageQuery(limit=3, order="desc", before="o5"), 10, [8, 7, 6], True),
        (PageQuery(limit=3, order="asc", after="o7"), 5, [], False),  # cursor not visible yet
        (PageQuery(limit=20, order="asc"), 0, [], False),
    ]
    for q, n, positions, more in cases:
        assert page_positions(n, pos, q) == (positions, more), q


@pytest.mark.anyio
async def test_steps_are_listed_by_creation_from_their_first_time_on():
    raw = raw_scenario(0)
    raw["threads"][0]["runs"][0]["steps"] = [
        {"id": "step_late", "timeline": [["in_progress", 3], ["completed", 4]]},
        {"id": "step_early", "timeline": [["in_progress", 1], ["completed", 2]]},
    ]
    clock = ManualClock()
    async with client(create_app(parse_scenario(raw), clock=clock)) as c:
        url = "/threads/thread_1/runs/run_1/steps"
        assert ids((await c.get(url)).json()) == []
        assert (await c.get(f"{url}/step_early")).status_code == 404
        clock.advance(1)
        assert ids((await c.get(url)).json()) == ["step_early"]
        clock.advance(2)
        assert ids((await c.get(url, params={"order": "asc"})).json()) == [
            "step_early",
            "step_late",
        ]
        step = (await c.get(f"{url}/step_late")).json()
        assert (step["status"], step["created_at"]) == ("in_progress", EPOCH + 3)


@pytest.mark.parametrize(
    ("path", "params", "param"),
    [
        ("/runs/run_1/steps", {"limit": 0}, "limit"),
        ("/runs/run_1/steps", {"limit": 101}, "limit"),
        ("/runs/run_1/steps", {"limit": "x"}, "limit"),
        ("/runs/run_1/steps", {"limit": "2.5"}, "limit"),
        ("/runs/run_1/steps", {"limit": "--5"}, "limit"),
        ("/runs/run_1/steps", {"limit": ""}, "limit"),
        ("/runs", {"limit": -1}, "limit"),
        ("/runs", {"order": "up"}, "order"),
        ("/runs/run_1/steps", {"include[]": "bogus"}, "include[]"),
        ("/runs/run_1/steps/step_000", {"include[]": "bogus"}, "include[]"),
        (
            "/runs",
            {"include[]": "step_details.tool_calls[*].file_search.results[*].content"},
            "include[]",
        ),
    ],
)
@pytest.mark.anyio
async def test_list_parameters_are_checked(path, params, param):
    async with client(create_app(scenario(), clock=ManualClock())) as c:
        r = await c.get(f"/threads/thread_1{path}", params=params)
    assert r.status_code == 400
    assert (
        r.json()["error"]["param"] == param and r.json()["error"]["type"] == "invalid_request_error"
    )


@pytest.mark.anyio
async def test_good_list_parameters_pass():
    include = {"include[]": "step_details.tool_calls[*].file_search.results[*].content"}
    async with client(create_app(scenario(), clock=ManualClock())) as c:
        for params in ({"limit": 1}, {"limit": 100, "order": "asc"}, include):
            assert (await c.get("/threads/thread_1/runs/run_1/steps", params=params)).is_success


@pytest.mark.anyio
async def test_the_beta_header_is_required():
    async with client(create_app(scenario(), clock=ManualClock()), headers={}) as c:
        for path in ("/threads/thread_1/runs", "/threads/thread_1/runs/run_1"):
            r = await c.get(path)
            assert (r.status_code, r.json()) == (400, BETA_ERROR)
        r = await c.get("/threads/thread_1/runs", headers={"OpenAI-Beta": "assistants=v1"})
        assert r.status_code == 400


@pytest.mark.anyio
async def test_a_wrong_or_missing_key_is_401_and_never_echoed():
    key = "sk-sim-right-key-000000000"
    app = create_app(scenario(), clock=ManualClock(), api_key=key)
    url = "/threads/thread_1/runs/run_1"
    for auth in ("Bearer sk-wrong-1234", "sk-sim-right-key-000000000", f"Bearer {key}x", None):
        headers = {**HEADERS, **({"Authorization": auth} if auth else {})}
        async with client(app, headers=headers) as c:
            r = await c.get(url)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        assert "sk-" not in r.text and "1234" not in r.text
    async with client(app, headers={**HEADERS, "Authorization": f"Bearer {key}"}) as c:
        assert (await c.get(url)).status_code == 200


@pytest.mark.anyio
async def test_azure_style_key_header_and_api_version():
    key = "0123456789abcdef0123456789abcdef"
    app = create_app(
        scenario(),
        clock=ManualClock(),
        api_key=key,
        api_key_header="api-key",
        required_query={"api-version": "2024-05-01-preview"},
    )
    url, version = "/threads/thread_1/runs/run_1", {"api-version": "2024-05-01-preview"}
    async with client(app, headers={**HEADERS, "api-key": key}) as c:
        r = await c.get(url)
        assert r.status_code == 400 and r.json()["error"]["param"] == "api-version"
        assert (await c.get(url, params={"api-version": "2023-01-01"})).status_code == 400
        assert (await c.get(url, params=version)).status_code == 200
    async with client(app, headers={**HEADERS, "Authorization": f"Bearer {key}"}) as c:
        r = await c.get(url, params=version)
        assert r.status_code == 401 and key not in r.text


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", "/threads/thread_x/runs", "No thread found with id 'thread_x'."),
        ("GET", "/threads/thread_x/runs/run_1", "No thread found with id 'thread_x'."),
        ("GET", "/threads/thread_1/runs/run_x", "No run found with id 'run_x'."),
        ("GET", "/threads/thread_2/runs/run_1", "No run found with id 'run_1'."),
        ("GET", "/threads/thread_1/runs/run_2", "No run found with id 'run_2'."),  # not yet
        ("GET", "/threads/thread_1/runs/run_x/steps", "No run found with id 'run_x'."),
        ("GET", "/threads/thread_1/runs/run_1/steps/step_x", "No run step found with id 'step_x'."),
        ("GET", "/threads/thread_1/runs/run_x/steps/step_000", "No run found with id 'run_x'."),
        ("GET", "/threads/thread_1/messages", "Invalid URL (GET /v1/threads/thread_1/messages)"),
        ("GET", "/assistants", "Invalid URL (GET /v1/assistants)"),
        ("POST", "/threads/thread_1/runs", "Invalid URL (POST /v1/threads/thread_1/runs)"),
    ],
)
@pytest.mark.anyio
async def test_not_found_has_openai_shape(method, path, message):
    async with client(create_app(scenario(), clock=ManualClock())) as c:
        r = await c.request(method, path)
    assert r.status_code == 404
    assert r.json() == {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    }


@pytest.mark.anyio
async def test_status_faults_with_retry_headers_then_normal_answers():
    app = create_app(scenario(), clock=ManualClock())
    async with client(app) as c, control(app) as ctl:
        spec = {"kind": "status", "status": 429, "count": 2, "retry_after": 1.5}
        r = await ctl.post("/faults", json=[{**spec, "retry_after_ms": 200, "match": "run"}])
        assert r.status_code == 204
        assert (await c.get("/threads/thread_1/runs")).status_code == 200  # not matched
        for _ in range(2):
            r = await c.get("/threads/thread_1/runs/run_1")
            assert r.status_code == 429
            assert (r.headers["retry-after"], r.headers["retry-after-ms"]) == ("1.5", "200")
            assert r.json()["error"]["code"] == "rate_limit_exceeded"
        assert (await c.get("/threads/thread_1/runs/run_1")).status_code == 200
        await ctl.post("/faults", json=[{"kind": "status", "status": 500}])
        r = await c.get("/threads/thread_1/runs/run_1/steps")  # match null: any route
        assert r.status_code == 500 and "retry-after" not in r.headers
        assert r.json()["error"]["type"] == "server_error"
        stats = (await ctl.get("/stats")).json()
    assert stats["requests"] == 5 and stats["by_status"] == {"200": 2, "429": 2, "500": 1}
    assert stats["by_route"] == {"runs": 1, "run": 3, "steps": 1}
    assert stats["faults_injected"] == {"status": 3} and stats["faults_pending"] == 0


@pytest.mark.anyio
async def test_body_faults_html_truncated_not_json_mangle():
    app = create_app(scenario(), clock=ManualClock())
    async with client(app) as c, control(app) as ctl:
        await ctl.post(
            "/faults",
            json=[
                {"kind": "html", "match": "steps"},
                {"kind": "html", "status": 502, "match": "steps"},
                {"kind": "truncated", "match": "runs"},
                {"kind": "not_json", "match": "run"},
                {"kind": "mangle", "match": "run"},
            ],
        )
        r = await c.get("/threads/thread_1/runs/run_1/steps/step_000")
        assert r.status_code == 503 and r.headers["content-type"].startswith("text/html")
        assert "<html>" in r.text
        r = await c.get("/threads/thread_1/runs/run_1/steps")
        assert r.status_code == 502 and "502 Bad Gateway" in r.text
        r = await c.get("/threads/thread_1/runs")
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        with pytest.raises(json.JSONDecodeError):
            r.json()
        r = await c.get("/threads/thread_1/runs/run_1")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        r = await c.get("/threads/thread_1/runs/run_1")
        assert "status" not in r.json() and "x_future_field" in r.json()
        assert "status" in (await c.get("/threads/thread_1/runs/run_1")).json()


@pytest.mark.anyio
async def test_delay_fault_answers_normally_after_the_delay():
    app = create_app(scenario(), clock=ManualClock())
    async with client(app) as c, control(app) as ctl:
        await ctl.post("/faults", json=[{"kind": "delay", "seconds": 0.2, "match": "run"}])
        started = time.monotonic()
        r = await c.get("/threads/thread_1/runs/run_1")
        assert r.status_code == 200 and time.monotonic() - started >= 0.2
        assert r.json()["id"] == "run_1"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"kind": "nope"}, "faults[0].kind"),
        ({"kind": "status", "match": "messages"}, "faults[0].match"),
        ({"kind": "status", "status": 99}, "faults[0].status"),
        ({"kind": "status", "count": -1}, "faults[0].count"),
        ({"kind": "status", "retry_after": "soon"}, "faults[0].retry_after"),
        ({"kind": "delay", "seconds": None}, "faults[0].seconds"),
    ],
)
@pytest.mark.anyio
async def test_fault_specs_are_checked(spec, field):
    app = create_app(scenario(), clock=ManualClock())
    async with control(app) as ctl:
        r = await ctl.post("/faults", json=[spec])
    assert r.status_code == 422 and r.json()["error"].startswith(field)


@pytest.mark.anyio
async def test_control_routes_are_never_faulted_and_need_no_auth():
    app = create_app(scenario(), clock=ManualClock(), api_key="sk-something-000000")
    async with control(app) as ctl:
        await ctl.post("/faults", json=[{"kind": "status", "status": 503, "count": 5}])
        assert (await ctl.get("/stats")).json()["faults_pending"] == 5
        assert (await ctl.post("/advance", json={"seconds": 2})).json() == {"now": 2.0}
        assert (await ctl.get("/scenario")).json() == {
            "threads": [
                {"id": "thread_1", "runs": ["run_1", "run_2"]},
                {"id": "thread_2", "runs": []},
            ]
        }
        assert (await ctl.post("/advance", json={"seconds": -1})).status_code == 400
        assert (await ctl.get("/nothing")).status_code == 404
        assert (await ctl.get("/stats")).json()["requests"] == 0
    async with control(create_app(scenario(), clock=RealClock())) as ctl:
        assert (await ctl.post("/advance", json={"seconds": 1})).status_code == 409


def test_served_reset_breaks_the_connection(sim):
    s = sim(raw_scenario())
    url = f"{s.base_url}/threads/thread_1/runs/run_1"
    s.faults([{"kind": "reset", "count": 1, "match": "run"}])
    with pytest.raises(httpx.TransportError):
        httpx.get(url, headers=HEADERS)
    assert httpx.get(url, headers=HEADERS).json()["status"] == "queued"
    assert s.advance(1.5) == 1.5
    assert httpx.get(url, headers=HEADERS).json()["status"] == "in_progress"
    assert s.stats()["faults_injected"] == {"reset": 1}
    assert [(t["id"], t["status"]) for t in s.transitions()][:2] == [
        ("run_1", "queued"),
        ("step_000", "in_progress"),
    ]


def test_served_with_a_key_and_a_real_clock(sim):
    s = sim(default_scenario(), manual_clock=False, api_key="sk-served-000000000")
    assert s.base_url.startswith("http://127.0.0.1:") and s.base_url.endswith("/v1")
    url = f"{s.base_url}/threads/thread_demo_support/runs"
    assert httpx.get(url, headers=HEADERS).status_code == 401
    auth = {**HEADERS, "Authorization": "Bearer sk-served-000000000"}
    assert ids(httpx.get(url, headers=auth).json()) == ["run_demo_analysis", "run_demo_weather"]
    with pytest.raises(httpx.HTTPStatusError):
        s.advance(1)  # a real clock: 409


@pytest.mark.anyio
async def test_serve_reports_its_port_and_stops_promptly_when_cancelled():
    app = create_app(scenario(), clock=ManualClock())
    ready, urls = anyio.Event(), []

    def on_ready(url):
        urls.append(url)
        ready.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(functools.partial(serve, app, on_ready=on_ready))
        with anyio.fail_after(10):
            await ready.wait()
        async with httpx.AsyncClient(base_url=urls[0], headers=HEADERS) as c:
            assert (await c.get("/threads/thread_1/runs/run_1")).status_code == 200
            started = time.monotonic()
            tg.cancel_scope.cancel()
    assert time.monotonic() - started < 3
    with pytest.raises(httpx.ConnectError):
        httpx.get(urls[0] + "/threads/thread_1/runs", headers=HEADERS)


@pytest.mark.anyio
async def test_serve_fails_when_the_port_is_taken():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with anyio.fail_after(10), pytest.raises(OSError, match="cannot listen"):
            await serve(create_app(scenario()), port=port)


def test_transitions_until_in_time_order():
    raw = raw_scenario(2)
    raw["threads"][0]["runs"][1]["timeline"] = [["queued", 3], ["queued", 3.5], ["completed", 4]]
    world = World(parse_scenario(raw), EPOCH + 0.25)
    got = world.transitions_until(4)
    assert [(t["id"], t["status"], t["at"]) for t in got] == [
        ("run_1", "queued", 0.0),
        ("step_000", "in_progress", 0.0),
        ("step_001", "in_progress", 0.01),
        ("run_1", "in_progress", 1.0),
        ("run_2", "queued", 3.0),  # a repeated status is no transition
        ("run_2", "completed", 4.0),  # at t itself: included
    ]
    assert got[-1] == {
        "kind": "thread.run",
        "id": "run_2",
        "thread_id": "thread_1",
        "run_id": "run_2",
        "status": "completed",
        "at": 4.0,
        "at_unix": EPOCH + 4.25,
    }
    assert got[1]["kind"] == "thread.run.step" and got[1]["run_id"] == "run_1"
    assert len(world.transitions_until(100)) == len(got) + 3
    assert world.transitions_until(-1) == []


@pytest.mark.anyio
async def test_transitions_route_follows_the_clock():
    clock = ManualClock()
    app = create_app(scenario(), clock=clock)
    async with control(app) as ctl:
        clock.advance(1)
        body = (await ctl.get("/transitions")).json()
    seen = [(x["id"], x["status"]) for x in body["transitions"]]
    assert body["now"] == 1.0 and ("run_1", "in_progress") in seen
    assert ("run_1", "completed") not in seen


def test_default_scenario_is_the_demo():
    demo = default_scenario()
    runs = [r for t in demo.threads for r in t.runs]
    assert len(demo.threads) == 2 and len(runs) == 4
    assert all(r.created <= 2 for r in runs)
    assert all(s.timeline[-1][1] <= 20 for r in runs for s in (r, *r.steps))
    statuses = {s for r in runs for s, _ in r.timeline}
    assert {"completed", "failed", "requires_action", "cancelling", "cancelled"} <= statuses
    assert any(s.timeline[-1][0] == "failed" for r in runs for s in r.steps)
    assert {t for r in runs for s in r.steps for t in s.tools} == {
        "code_interpreter",
        "file_search",
        "function",
    }
    assert {s.type for r in runs for s in r.steps} == {"tool_calls", "message_creation"}


def test_generated_scenarios_are_deterministic():
    a = generate_scenario(runs=50, seed=7, long_runs=2)
    assert a == generate_scenario(runs=50, seed=7, long_runs=2)
    assert a != generate_scenario(runs=50, seed=8, long_runs=2)
    runs = [r for t in a.threads for r in t.runs]
    assert len(a.threads) == 10 and len(runs) == 50
    assert sum(len(r.steps) == 320 for r in runs) == 2
    assert all(1 <= len(r.steps) <= 12 for r in runs if len(r.steps) != 320)
    finals = {r.timeline[-1][0] for r in runs}
    assert "completed" in finals and len(finals) > 1
    assert len({r.id for r in runs}) == 50


def test_generated_timelines_never_go_back_and_steps_stay_within_their_run():
    for seed in range(5):
        for thread in generate_scenario(runs=40, seed=seed, long_runs=3).threads:
            for run in thread.runs:
                times = [t for _, t in run.timeline]
                assert times == sorted(times) and times[-1] <= 30
                for step in run.steps:
                    st = [t for _, t in step.timeline]
                    assert st == sorted(st)
                    assert run.timeline[1][1] <= st[0] and st[-1] <= times[-1]


def test_a_long_run_can_join_with_steps_already_done():
    spec = generate_scenario(runs=5, seed=3, long_runs=1, long_run_steps=330, long_run_done=300)
    world = World(spec, EPOCH)
    thread = next(t for t in spec.threads if any(len(r.steps) == 330 for r in t.runs))
    run = next(r for r in thread.runs if len(r.steps) == 330)
    assert world.run(thread.id, run.id, 0.0)["status"] == "in_progress"  # type: ignore[index]
    steps: list[dict[str, object]] = []
    after = None
    while True:
        page = world.list_steps(thread.id, run.id, 0.0, PageQuery(limit=100, after=after))
        assert page is not None
        steps += page["data"]
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert len(steps) == 300 and {s["status"] for s in steps} == {"completed"}
    later = world.list_steps(thread.id, run.id, run.timeline[-1][1], PageQuery(limit=100))
    assert later is not None and later["has_more"]  # the other 30 came while it was watched


def test_ten_thousand_runs_are_served_from_an_index():
    spec = generate_scenario(runs=10_000, seed=1, long_runs=100, threads=10)
    world = World(spec, EPOCH)
    runs = [(t.id, r.id) for t in spec.threads for r in t.runs]
    long = [(t.id, r.id) for t in spec.threads for r in t.runs if len(r.steps) == 320]
    for thread_id, run_id in runs[::10]:
        assert world.run(thread_id, run_id, 10.0) is not None
    assert len(long) == 100
    for thread_id, run_id in long:
        page = world.list_steps(thread_id, run_id, 30.0, PageQuery(limit=100, order="asc"))
        assert page is not None and len(page["data"]) == 100 and page["has_more"]
    page = world.list_runs(spec.threads[0].id, 10.0, PageQuery(limit=100))
    assert page is not None and len(page["data"]) == 100


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({}, "threads"),
        ({"threads": [{"id": "../x"}]}, "threads[0].id"),
        ({"threads": [{"id": "t"}, {"id": "t"}]}, "threads[1].id"),
        ({"threads": [{"id": "t", "runs": {}}]}, "threads[0].runs"),
        ({"threads": [{"id": "t", "runs": [{"id": "r", "timeline": []}]}]}, "timeline"),
        (
            {"threads": [{"id": "t", "runs": [{"id": "r", "timeline": [["a", 2], ["b", 1]]}]}]},
            "threads[0].runs[0].timeline[1]",
        ),
        (
            {"threads": [{"id": "t", "runs": [{"id": "r", "timeline": [["a", "1"]]}]}]},
            "timeline[0]",
        ),
        ({"threads": [{"id": "t", "runs": [{"id": "r", "timline": []}]}]}, "runs[0].timline"),
        ({"epoch": "now", "threads": []}, "epoch"),
    ],
)
def test_bad_scenarios_name_the_field(raw, field):
    with pytest.raises(ScenarioError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_scenario(raw)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"poll_after_ms": "soon"}, "runs[0].poll_after_ms"),
        ({"model": 4}, "runs[0].model"),
        ({"steps": [{"id": "s", "type": "thinking", "timeline": [["x", 0]]}]}, "steps[0].type"),
        ({"steps": [{"id": "s", "tools": ["browser"], "type": "tool_calls"}]}, "steps[0].tools"),
        ({"steps": [{"id": "s", "tools": ["function"]}]}, "steps[0].tools"),  # message_creation
        (
            {"steps": [{"id": "s", "timeline": [["x", 0]], "usage": {"prompt_tokens": -1}}]},
            "steps[0].usage",
        ),
        ({"steps": [{"id": "s", "timeline": [["x", 0]]}, {"id": "s"}]}, "steps[1].id"),
    ],
)
def test_bad_runs_and_steps_name_the_field(bad, field):
    raw = {"threads": [{"id": "t", "runs": [{"id": "r", "timeline": [["queued", 0]], **bad}]}]}
    with pytest.raises(ScenarioError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_scenario(raw)


def test_load_scenario(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(raw_scenario()))
    assert load_scenario(good) == scenario()
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ScenarioError, match="invalid JSON"):
        load_scenario(tmp_path / "bad.json")
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.json")
