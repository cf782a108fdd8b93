"""The Assistants source on the simulator in-process: cursor, skipped listings, discovery."""

from __future__ import annotations

import httpx
import pytest

from tests.fakes import FakeClock
from watcher.api.client import ApiClient
from watcher.api.ratelimit import RateGate
from watcher.config.settings import ApiSettings, RetrySettings
from watcher.simulator.app import ManualClock, create_app
from watcher.simulator.scenario import parse_scenario
from watcher.sources import assistants

pytestmark = pytest.mark.anyio


def world(runs):
    clock = ManualClock()
    app = create_app(
        parse_scenario({"epoch": 1_000_000, "threads": [{"id": "thread_1", "runs": runs}]}),
        clock=clock,
    )
    fake = FakeClock()
    client = ApiClient(
        ApiSettings(base_url="http://127.0.0.1/v1"),
        RetrySettings(attempts=1),
        clock=fake,
        gate=RateGate(fake, rate=1e6),
        transport=httpx.ASGITransport(app=app),
    )
    return clock, client, app.state.sim


def step(i, done_at):
    return {"id": f"step_{i:03d}", "timeline": [["in_progress", 0], ["completed", done_at]]}


async def test_cursor_moves_past_the_terminal_prefix_only():
    clock, client, _sim = world(
        [
            {
                "id": "run_1",
                "timeline": [["in_progress", 0]],
                "steps": [step(0, 1), step(1, 5), step(2, 1)],
            }
        ]
    )
    clock.advance(2)
    obs = await assistants.observe_run(client, "thread_1", "run_1", cursor=None)
    assert obs.cursor == "step_000"  # step_001 still runs, so step_002 stays ahead of it
    assert [o.object_id for o in obs.objects] == ["run_1", "step_000", "step_001", "step_002"]
    assert not obs.done
    obs = await assistants.observe_run(client, "thread_1", "run_1", cursor=obs.cursor)
    assert [o.object_id for o in obs.objects] == ["run_1", "step_001", "step_002"]


async def test_terminal_run_lists_steps_after_itself_and_ends():
    clock, client, _sim = world(
        [
            {
                "id": "run_1",
                "timeline": [["in_progress", 0], ["failed", 3]],
                "steps": [
                    step(0, 1),
                    {"id": "step_x", "timeline": [["in_progress", 0], ["failed", 3]]},
                ],
            }
        ]
    )
    clock.advance(4)
    obs = await assistants.observe_run(client, "thread_1", "run_1", cursor=None)
    assert obs.done and obs.run_status == "failed"
    assert [o.object_id for o in obs.objects] == ["step_000", "step_x", "run_1"]


@pytest.mark.parametrize("status", ["queued", "requires_action"])
async def test_frozen_statuses_cost_one_request(status):
    clock, client, sim = world(
        [{"id": "run_1", "timeline": [[status, 0], ["completed", 9]], "steps": [step(0, 9)]}]
    )
    first = await assistants.observe_run(client, "thread_1", "run_1", cursor=None)
    before = dict(sim.by_route)
    again = await assistants.observe_run(
        client, "thread_1", "run_1", cursor=None, previous_status=first.run_status
    )
    assert sim.by_route["run"] == before["run"] + 1
    assert sim.by_route["steps"] == before["steps"]
    assert [o.object_id for o in again.objects] == ["run_1"] and not again.done
    clock.advance(10)
    last = await assistants.observe_run(
        client, "thread_1", "run_1", cursor=None, previous_status=status
    )
    assert last.done and sim.by_route["steps"] == before["steps"] + 1


async def test_discovery_ignores_runs_finished_before_the_watch():
    clock, client, _sim = world(
        [
            {"id": "run_old", "timeline": [["queued", 0], ["completed", 1]]},
            {"id": "run_busy", "timeline": [["queued", 0], ["in_progress", 1]]},
            {"id": "run_new", "timeline": [["queued", 50]]},
        ]
    )
    clock.advance(10)
    found = await assistants.discover_runs(
        client, "thread_1", seen=set(), first=True, started_at=1_000_005.0
    )
    assert found.new_runs == ["run_busy"] and found.ignored == ["run_old"]
    clock.advance(45)
    found = await assistants.discover_runs(
        client, "thread_1", seen={"run_old", "run_busy"}, first=False, started_at=1_000_005.0
    )
    assert found.new_runs == ["run_new"]
