"""The simulator cannot drift from the API: its answers validated against OpenAI's spec."""

from __future__ import annotations

import httpx
import pytest

from tests.openapi_schema import (
    HERE,
    LONG_RUNNING_NAME,
    SHARED,
    SHARED_SPEC,
    SPEC_NAME,
    errors,
)
from watcher.simulator.app import ManualClock, create_app
from watcher.simulator.scenario import default_scenario, generate_scenario, parse_scenario

pytestmark = pytest.mark.anyio

HEADERS = {"OpenAI-Beta": "assistants=v2"}
INCLUDE = {"include[]": "step_details.tool_calls[*].file_search.results[*].content"}
ALL_TOOLS = {"type": "tool_calls", "tools": ["code_interpreter", "file_search", "function"]}
SCENARIO = parse_scenario(
    {
        "threads": [
            {
                "id": "thread_1",
                "runs": [
                    {
                        "id": "run_ok",
                        "timeline": [
                            ["queued", 0],
                            ["in_progress", 1],
                            ["requires_action", 2],
                            ["in_progress", 3],
                            ["completed", 4],
                        ],
                        "steps": [
                            {
                                "id": "step_tools",
                                "timeline": [["in_progress", 1], ["completed", 3]],
                                **ALL_TOOLS,
                            },
                            {
                                "id": "step_msg",
                                "type": "message_creation",
                                "timeline": [["in_progress", 3], ["completed", 4]],
                            },
                        ],
                    },
                    {
                        "id": "run_fail",
                        "timeline": [["queued", 0], ["in_progress", 1], ["failed", 2]],
                        "steps": [
                            {
                                "id": "step_fail",
                                "timeline": [["in_progress", 1], ["failed", 2]],
                                **ALL_TOOLS,
                            }
                        ],
                    },
                    {"id": "run_inc", "timeline": [["queued", 0], ["incomplete", 2]], "steps": []},
                    {
                        "id": "run_exp",
                        "timeline": [["queued", 0], ["expired", 2]],
                        "steps": [
                            {"id": "step_exp", "timeline": [["in_progress", 0], ["expired", 2]]}
                        ],
                    },
                    {
                        "id": "run_can",
                        "timeline": [["queued", 0], ["cancelling", 1], ["cancelled", 2]],
                        "steps": [
                            {"id": "step_can", "timeline": [["in_progress", 0], ["cancelled", 2]]}
                        ],
                    },
                    {"id": "run_late", "timeline": [["queued", 9]]},  # never seen: empty lists
                ],
            }
        ]
    }
)
RUN_STATUSES = {
    "queued",
    "in_progress",
    "requires_action",
    "cancelling",
    "cancelled",
    "failed",
    "completed",
    "incomplete",
    "expired",
}
STEP_STATUSES = {"in_progress", "completed", "failed", "cancelled", "expired"}


def list_errors(body, schema):
    if body["data"]:
        return errors(body, schema)
    # spec gap: first_id/last_id are not marked nullable, yet an empty list carries nulls
    assert body["first_id"] is None and body["last_id"] is None
    return errors(body, schema, nullable=("first_id", "last_id"))


async def walk(scenario, times):
    """Every run and step answer at each clock time, validated; the statuses seen."""
    clock = ManualClock()
    app = create_app(scenario, clock=clock)
    statuses: set[tuple[str, str]] = set()
    types: set[str] = set()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sim/v1", headers=HEADERS
    ) as client:
        for t in times:
            clock.advance(t - clock.now())
            for thread in scenario.threads:
                base = f"/threads/{thread.id}/runs"
                runs = (await client.get(base, params={"limit": 100})).json()
                assert list_errors(runs, "ListRunsResponse") == []
                for run_id in (r.id for r in thread.runs):
                    r = await client.get(f"{base}/{run_id}")
                    if r.status_code == 404:  # not created yet
                        assert errors(r.json(), "ErrorResponse") == []
                        continue
                    run = r.json()
                    assert errors(run, "RunObject") == [], run
                    statuses.add(("run", run["status"]))
                    params = {"order": "asc", "limit": 100, **INCLUDE}
                    steps = (await client.get(f"{base}/{run_id}/steps", params=params)).json()
                    assert list_errors(steps, "ListRunStepsResponse") == []
                    for step in steps["data"][:5]:
                        statuses.add(("step", step["status"]))
                        types.add(step["type"])
                        one = (await client.get(f"{base}/{run_id}/steps/{step['id']}")).json()
                        assert errors(one, "RunStepObject") == [], one
    return statuses, types


async def test_every_status_validates():
    statuses, types = await walk(SCENARIO, range(6))
    assert {s for k, s in statuses if k == "run"} == RUN_STATUSES
    assert {s for k, s in statuses if k == "step"} == STEP_STATUSES
    assert types == {"tool_calls", "message_creation"}


async def test_the_demo_validates_from_start_to_end():
    statuses, _ = await walk(default_scenario(), [0, 1, 2, 4, 5, 7, 7.5, 9, 12, 14, 20])
    assert {"requires_action", "failed", "cancelled", "completed"} <= {s for _, s in statuses}


async def test_generated_runs_validate():
    scenario = generate_scenario(runs=60, seed=3, threads=3, long_runs=1, duration=20)
    statuses, _ = await walk(scenario, [0, 2, 5, 8, 12, 20])
    assert {"queued", "in_progress", "completed"} <= {s for k, s in statuses if k == "run"}


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/threads/thread_1/runs/run_nope", HEADERS, 404),
        ("/threads/thread_nope/runs", HEADERS, 404),
        ("/threads/thread_1/runs/run_ok/steps/step_nope", HEADERS, 404),
        ("/threads/thread_1/runs/run_ok", {}, 400),
        ("/threads/thread_1/runs?limit=500", HEADERS, 400),
        ("/threads/thread_1/runs?limit=ten", HEADERS, 400),
        ("/threads/thread_1/runs?order=sideways", HEADERS, 400),
        ("/threads/thread_1/runs/run_ok/steps?include[]=everything", HEADERS, 400),
        ("/nothing/here", HEADERS, 404),
        ("/threads/thread_1/runs/run_ok", {**HEADERS, "Authorization": "Bearer sk-no"}, 401),
    ],
)
async def test_errors_have_openai_shape(path, headers, status):
    app = create_app(SCENARIO, clock=ManualClock(), api_key="sk-yes-0000000000")
    if status != 401:
        headers = {**headers, "Authorization": "Bearer sk-yes-0000000000"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sim/v1"
    ) as client:
        r = await client.get(path, headers=headers)
    assert r.status_code == status
    assert errors(r.json(), "ErrorResponse") == []


@pytest.mark.parametrize("status", [429, 500, 503, 418])
async def test_status_faults_have_openai_shape(status):
    app = create_app(SCENARIO, clock=ManualClock())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        await client.post("/_sim/faults", json=[{"kind": "status", "status": status}])
        r = await client.get("/v1/threads/thread_1/runs", headers=HEADERS)
    assert r.status_code == status
    assert errors(r.json(), "ErrorResponse") == []


@pytest.mark.skipif(not SHARED_SPEC.exists(), reason="no shared/ beside this checkout")
@pytest.mark.parametrize("name", [SPEC_NAME, LONG_RUNNING_NAME])
def test_the_copied_spec_is_the_shared_one(name):
    assert (HERE / name).read_bytes() == (SHARED / name).read_bytes()
