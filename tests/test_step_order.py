"""Steps that finish out of order: each (object, status) is reported once, with the status
reported before as `previous_status`. The watcher runs in-process, polling the simulator
over `httpx.ASGITransport` on a manual clock; its events are the lines its stdout sink gets.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes import FakeClock
from watcher.api.client import ApiClient
from watcher.api.ratelimit import RateGate
from watcher.config.settings import ApiSettings, RetrySettings, Settings
from watcher.simulator.app import ManualClock, create_app
from watcher.simulator.scenario import parse_scenario
from watcher.state.store import Store
from watcher.watching.app import Watcher

pytestmark = pytest.mark.anyio


class Lines:
    """A line sink that keeps what it is given (the stdout sink, minus the stream)."""

    name = "stdout"

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def write(self, bodies: Sequence[str]) -> None:
        self.events.extend(json.loads(b) for b in bodies)


class World:
    """The simulator with one run, and a watcher watching it."""

    def __init__(self, tmp_path: Path, run: dict[str, Any]) -> None:
        self.sim_clock = ManualClock()
        app = create_app(
            parse_scenario({"epoch": 1_000_000, "threads": [{"id": "thread_1", "runs": [run]}]}),
            clock=self.sim_clock,
        )
        clock = FakeClock()
        api = ApiSettings(base_url="http://127.0.0.1/v1")
        client = ApiClient(
            api,
            RetrySettings(attempts=1),
            clock=clock,
            gate=RateGate(clock, rate=1e6),
            transport=httpx.ASGITransport(app=app),
        )
        self.store = Store(tmp_path / "state.db")
        self.lines = Lines()
        self.watcher = Watcher(
            Settings(api=api), client=client, store=self.store, clock=clock, sinks=[self.lines]
        )
        self.key = ("thread_1", run["id"])

    async def start(self) -> World:
        await self.watcher.add_watch(*self.key)
        return self

    async def poll_at(self, t: float) -> bool:
        """One poll with the simulator's clock at `t`; whether the watch goes on."""
        self.sim_clock.advance(t - self.sim_clock.now())
        return await self.watcher.poll_once(*self.key) is not None

    def pairs(self) -> list[tuple[str, str]]:
        return [(e["data"]["id"], e["data"]["status"]) for e in self.lines.events]


def assert_each_status_once_with_its_previous(events: list[dict[str, Any]]) -> None:
    last: dict[str, str] = {}
    pairs = [(e["data"]["id"], e["data"]["status"]) for e in events]
    assert len(pairs) == len(set(pairs)), f"reported twice: {pairs}"
    for e in events:
        oid = e["data"]["id"]
        assert e["previous_status"] == last.get(oid), (oid, e["type"], e["previous_status"])
        last[oid] = e["data"]["status"]


def step(sid: str, start: float, done: float) -> dict[str, Any]:
    return {"id": sid, "timeline": [["in_progress", start], ["completed", done]]}


async def test_a_step_done_ahead_of_a_running_one_is_reported_once(tmp_path):
    w = await World(
        tmp_path,
        {
            "id": "run_1",
            "timeline": [["in_progress", 0], ["completed", 8]],
            "steps": [step("step_0", 0, 1), step("step_1", 0.1, 5), step("step_2", 0.2, 1)],
        },
    ).start()
    try:
        # step 0 done (the cursor moves past it), step 1 running, step 2 already done
        assert await w.poll_at(2)
        assert await w.poll_at(3)  # lists step 1 and step 2 again: nothing new
        assert await w.poll_at(4)
        assert await w.poll_at(6)  # step 1 done: the cursor moves past step 2
        assert not await w.poll_at(9)
        assert w.pairs() == [
            ("run_1", "in_progress"),
            ("step_0", "completed"),
            ("step_1", "in_progress"),
            ("step_2", "completed"),
            ("step_1", "completed"),
            ("run_1", "completed"),
        ]
        assert_each_status_once_with_its_previous(w.lines.events)
    finally:
        w.store.close()


@pytest.mark.parametrize("seed", range(16))
async def test_any_finish_order_reports_each_status_once(tmp_path, seed):
    """Steps start in order and finish in any order; polls come at random times."""
    rng = random.Random(seed)
    n = rng.randint(3, 8)
    steps = []
    for i in range(n):
        start = i * 0.5
        steps.append(step(f"step_{i}", start, start + rng.choice([0.2, 1, 2, 4, 7])))
    end = max(s["timeline"][1][1] for s in steps) + 1
    w = await World(
        tmp_path,
        {"id": "run_1", "timeline": [["in_progress", 0], ["completed", end]], "steps": steps},
    ).start()
    try:
        t, going = 0.0, True
        while going:
            t += rng.choice([0.3, 0.7, 1.5])
            going = await w.poll_at(t)
            assert t < end + 5, "the watch did not end"
        assert_each_status_once_with_its_previous(w.lines.events)
        # every final status was reported, and every step that was seen running
        assert {(f"step_{i}", "completed") for i in range(n)} <= set(w.pairs())
    finally:
        w.store.close()
