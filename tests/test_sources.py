"""The `Source` protocol's Assistants implementation, in-process over ASGI to the simulator."""

from __future__ import annotations

import pytest

from tests.inproc import sim_client
from watcher.simulator import state as sim_state
from watcher.simulator.app import ManualClock, create_app
from watcher.simulator.scenario import parse_scenario
from watcher.sources.assistants import ASSISTANTS, RUN, STEP
from watcher.sources.base import Source

pytestmark = pytest.mark.anyio


def world(runs):
    clock = ManualClock()
    app = create_app(
        parse_scenario({"epoch": 1_000_000, "threads": [{"id": "thread_1", "runs": runs}]}),
        clock=clock,
    )
    client, seen = sim_client(app)
    return clock, client, seen


def step(i, start, done):
    return {"id": f"step_{i}", "timeline": [["in_progress", start], ["completed", done]]}


async def test_a_run_and_its_steps_through_the_protocol():
    clock, client, seen = world(
        [
            {
                "id": "run_1",
                "timeline": [["queued", 0], ["in_progress", 1], ["completed", 9]],
                "steps": [step(0, 1, 2), step(1, 2, 8)],
            }
        ]
    )
    source: Source = ASSISTANTS
    position = {"include": (), "previous_status": None, "resume": None, "max_pages": 10}
    clock.advance(3)
    obs = await source.observe(client, ("thread_1", "run_1"), cursor=None, **position)
    assert [(o.kind, o.object_id, o.status) for o in obs.objects] == [
        (RUN, "run_1", "in_progress"),
        (STEP, "step_0", "completed"),
        (STEP, "step_1", "in_progress"),
    ]
    assert obs.status == "in_progress" and obs.cursor == "step_0" and not obs.done
    assert all(o.thread_id == "thread_1" and o.run_id == "run_1" for o in obs.objects)
    clock.advance(10)
    obs = await source.observe(client, ("thread_1", "run_1"), cursor=obs.cursor, **position)
    # a terminal run goes out after its steps; the watch ends
    assert [o.object_id for o in obs.objects] == ["step_1", "run_1"]
    assert obs.done and source.kinds[source.root].succeeded(obs.status)
    # every request of this source carries its beta header, and only the paths it knows
    assert {r.headers["openai-beta"] for r in seen} == {"assistants=v2"}
    assert [r.url.path for r in seen] == [
        "/v1/threads/thread_1/runs/run_1",
        "/v1/threads/thread_1/runs/run_1/steps",
        "/v1/threads/thread_1/runs/run_1",
        "/v1/threads/thread_1/runs/run_1/steps",
    ]


async def test_discovery_through_the_protocol():
    clock, client, _seen = world(
        [
            {"id": "run_old", "timeline": [["queued", 0], ["completed", 1]]},
            {"id": "run_busy", "timeline": [["queued", 0], ["in_progress", 1]]},
        ]
    )
    clock.advance(10)
    found = await ASSISTANTS.discover(
        client,
        "thread_1",
        seen=set(),
        first=True,
        started_at=1_000_005.0,
        resume=None,
        max_pages=10,
    )
    assert found.new == ["run_busy"] and found.ignored == ["run_old"]


def test_the_kinds_agree_with_the_simulator():
    run, step_kind = ASSISTANTS.kinds[RUN], ASSISTANTS.kinds[STEP]
    assert run.terminal == sim_state.RUN_TERMINAL and step_kind.terminal == sim_state.STEP_TERMINAL
    assert run.terminal <= set(run.statuses) and step_kind.terminal <= set(step_kind.statuses)
    assert run.slow == {"requires_action"} and run.success == {"completed"}
    assert not run.is_terminal("a_status_from_the_future")
