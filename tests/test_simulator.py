"""The simulator: statuses over time, cursors, checks, faults, generated scenarios."""

from __future__ import annotations

import httpx
import pytest

from watcher.simulator.app import ManualClock, create_app
from watcher.simulator.scenario import ScenarioError, generate_scenario, parse_scenario

pytestmark = pytest.mark.anyio
HEADERS = {"OpenAI-Beta": "assistants=v2"}


def scenario(n_steps: int = 3):
    steps = [
        {"id": f"step_{i:03d}", "timeline": [["in_progress", i * 0.01], ["completed", 5]]}
        for i in range(n_steps)
    ]
    return parse_scenario(
        {
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
                        {"id": "run_2", "timeline": [["queued", 3], ["completed", 4]], "steps": []},
                    ],
                }
            ]
        }
    )


def client(app, **kw):
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://sim/v1",
        headers=kw.pop("headers", HEADERS),
        **kw,
    )


async def test_statuses_move_with_the_clock():
    clock = ManualClock()
    async with client(create_app(scenario(), clock=clock)) as c:
        assert (await c.get("/threads/thread_1/runs/run_1")).json()["status"] == "queued"
        assert (await c.get("/threads/thread_1/runs/run_2")).status_code == 404  # not created
        clock.advance(3.5)
        r = await c.get("/threads/thread_1/runs/run_1")
        assert r.json()["status"] == "in_progress"
        assert r.headers["openai-poll-after-ms"] == "1500"
        assert [x["id"] for x in (await c.get("/threads/thread_1/runs")).json()["data"]] == [
            "run_2",
            "run_1",
        ]  # default order desc
        clock.advance(2)
        run = (await c.get("/threads/thread_1/runs/run_1")).json()
        assert run["status"] == "completed" and run["usage"]["total_tokens"] > 0


async def test_paging_over_250_steps_with_after_and_before():
    clock = ManualClock()
    clock.advance(4)
    async with client(create_app(scenario(250), clock=clock)) as c:
        seen, after = [], None
        while True:
            params = {"order": "asc", "limit": 100, **({"after": after} if after else {})}
            page = (await c.get("/threads/thread_1/runs/run_1/steps", params=params)).json()
            seen += [s["id"] for s in page["data"]]
            assert page["first_id"] == page["data"][0]["id"]
            if not page["has_more"]:
                break
            after = page["last_id"]
        assert seen == [f"step_{i:03d}" for i in range(250)]
        back = (
            await c.get(
                "/threads/thread_1/runs/run_1/steps",
                params={"order": "asc", "before": "step_005", "limit": 3},
            )
        ).json()
        assert [s["id"] for s in back["data"]] == ["step_000", "step_001", "step_002"]
        assert back["has_more"] is True
        empty = (
            await c.get("/threads/thread_1/runs/run_1/steps", params={"after": "step_000"})
        ).json()  # desc: nothing after
        assert empty == {
            "object": "list",
            "data": [],
            "first_id": None,
            "last_id": None,
            "has_more": False,
        }


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"limit": "x"}, {"order": "up"}, {"include[]": "bogus"}],
)
async def test_list_parameters_are_checked(params):
    async with client(create_app(scenario(), clock=ManualClock())) as c:
        r = await c.get("/threads/thread_1/runs/run_1/steps", params=params)
    assert r.status_code == 400
    assert r.json()["error"]["param"] in ("limit", "order", "include[]")


async def test_beta_header_key_and_azure_style():
    key = "sk-sim-right-key-000000000"
    app = create_app(scenario(), clock=ManualClock(), api_key=key)
    async with client(app, headers={}) as c:
        r = await c.get("/threads/thread_1/runs/run_1")
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_beta"
    async with client(app, headers={**HEADERS, "Authorization": "Bearer sk-wrong-1234"}) as c:
        r = await c.get("/threads/thread_1/runs/run_1")
        assert r.status_code == 401 and "sk-wrong" not in r.text
    async with client(app, headers={**HEADERS, "Authorization": f"Bearer {key}"}) as c:
        assert (await c.get("/threads/thread_1/runs/run_1")).status_code == 200
    azure = create_app(
        scenario(),
        clock=ManualClock(),
        api_key=key,
        api_key_header="api-key",
        required_query={"api-version": "2024-05-01-preview"},
    )
    async with client(azure, headers={**HEADERS, "api-key": key}) as c:
        assert (await c.get("/threads/thread_1/runs/run_1")).status_code == 400
        r = await c.get(
            "/threads/thread_1/runs/run_1", params={"api-version": "2024-05-01-preview"}
        )
        assert r.status_code == 200


async def test_faults_apply_to_matching_requests_then_stop():
    app = create_app(scenario(), clock=ManualClock())
    async with client(app) as c:
        control = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://sim/_sim"
        )
        await control.post(
            "/faults",
            json=[
                {"kind": "status", "status": 429, "retry_after": 2, "count": 1, "match": "run"},
                {"kind": "html", "count": 1, "match": "steps"},
                {"kind": "truncated", "count": 1, "match": "runs"},
            ],
        )
        r = await c.get("/threads/thread_1/runs/run_1")
        assert r.status_code == 429 and r.headers["retry-after"] == "2"
        r = await c.get("/threads/thread_1/runs/run_1/steps")
        assert r.status_code == 503 and r.headers["content-type"].startswith("text/html")
        r = await c.get("/threads/thread_1/runs")
        assert r.status_code == 200
        with pytest.raises(ValueError):
            r.json()
        assert (await c.get("/threads/thread_1/runs/run_1")).status_code == 200
        stats = (await control.get("/stats")).json()
        assert stats["faults_injected"] == {"status": 1, "html": 1, "truncated": 1}
        assert (await control.post("/faults", json=[{"kind": "nope"}])).status_code == 422
        await control.aclose()


def test_reset_breaks_the_connection(sim):
    s = sim(
        {
            "threads": [
                {
                    "id": "thread_1",
                    "runs": [{"id": "run_1", "timeline": [["queued", 0]], "steps": []}],
                }
            ]
        }
    )
    s.faults([{"kind": "reset", "count": 1}])
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{s.base_url}/threads/thread_1/runs/run_1", headers=HEADERS)
    assert httpx.get(f"{s.base_url}/threads/thread_1/runs/run_1", headers=HEADERS).is_success


def test_generated_scenarios_are_deterministic():
    a = generate_scenario(runs=50, seed=7, long_runs=2)
    b = generate_scenario(runs=50, seed=7, long_runs=2)
    assert a == b
    assert a != generate_scenario(runs=50, seed=8, long_runs=2)
    runs = [r for t in a.threads for r in t.runs]
    assert len(runs) == 50
    assert sum(len(r.steps) > 300 for r in runs) == 2
    finals = {r.timeline[-1][0] for r in runs}
    assert "completed" in finals and len(finals) > 1


async def test_transitions_until_now():
    clock = ManualClock()
    app = create_app(scenario(), clock=clock)
    control = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim/_sim")
    clock.advance(1)
    t = (await control.get("/transitions")).json()["transitions"]
    assert ("run_1", "in_progress") in [(x["id"], x["status"]) for x in t]
    assert ("run_1", "completed") not in [(x["id"], x["status"]) for x in t]
    await control.aclose()


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({}, "threads"),
        ({"threads": [{"id": "../x"}]}, "threads[0].id"),
        ({"threads": [{"id": "t", "runs": [{"id": "r", "timeline": []}]}]}, "timeline"),
        (
            {"threads": [{"id": "t", "runs": [{"id": "r", "timeline": [["a", 2], ["b", 1]]}]}]},
            "timeline[1]",
        ),
    ],
)
def test_bad_scenarios_name_the_field(raw, field):
    with pytest.raises(ScenarioError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_scenario(raw)


def test_generated_timelines_never_go_back_and_steps_stay_within_their_run():
    for seed in range(5):
        for thread in generate_scenario(runs=40, seed=seed, long_runs=3).threads:
            for run in thread.runs:
                times = [t for _, t in run.timeline]
                assert times == sorted(times)
                for step in run.steps:
                    st = [t for _, t in step.timeline]
                    assert st == sorted(st)
                    assert run.timeline[1][1] <= st[0] and st[-1] <= times[-1]
