"""The watcher's parts together, in-process over ASGI to the simulator on a manual clock:
the registry starts and drops watches on the scheduler it is given, the poller runs their
rounds through the source, health and outcomes say how they ended."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import FakeClock
from tests.inproc import Lines, sim_client
from watcher.config.settings import PollSettings, Settings
from watcher.simulator.app import ManualClock, create_app
from watcher.simulator.scenario import parse_scenario
from watcher.state.store import Store
from watcher.watching.app import Watcher
from watcher.watching.scheduler import Scheduler

pytestmark = pytest.mark.anyio

EPOCH = 1_732_450_000  # the fake clock's wall time at start: the simulator's time zero


class World:
    def __init__(
        self, tmp_path: Path, runs: list[dict[str, Any]], lines: Lines | None = None
    ) -> None:
        self.sim = ManualClock()
        app = create_app(
            parse_scenario({"epoch": EPOCH, "threads": [{"id": "thread_1", "runs": runs}]}),
            clock=self.sim,
        )
        clock = FakeClock()
        self.client, _ = sim_client(app, clock)
        api = self.client.api
        self.store = Store(tmp_path / "state.db")
        self.lines = lines or Lines()
        self.scheduler = Scheduler(clock, concurrency=4)
        settings = Settings(api=api, poll=PollSettings(interval=1.0))
        self.watcher = Watcher(
            settings,
            client=self.client,
            store=self.store,
            clock=clock,
            scheduler=self.scheduler,
            sinks=[self.lines],
        )

    def at(self, t: float) -> None:
        self.sim.advance(t - self.sim.now())

    def types(self, object_id: str) -> list[str]:
        return [e["type"] for e in self.lines.events if e["data"]["id"] == object_id]

    async def close(self) -> None:
        self.store.close()
        await self.client.aclose()


def run(rid: str, *timeline: tuple[str, float], steps: int = 0) -> dict[str, Any]:
    return {
        "id": rid,
        "timeline": [list(x) for x in timeline],
        "steps": [
            {"id": f"step_{rid}_{i}", "timeline": [["in_progress", 1], ["completed", 2 + i]]}
            for i in range(steps)
        ],
    }


async def test_a_thread_watch_finds_a_run_and_follows_it_to_its_end(tmp_path):
    w = World(
        tmp_path, [run("run_a", ("queued", 0), ("in_progress", 1), ("completed", 5), steps=2)]
    )
    watcher = w.watcher
    assert await watcher.add_watch("thread_1", None)
    assert ("thread", "thread_1") in w.scheduler  # the registry schedules on the one given
    assert watcher.counts() == {"runs": 0, "threads": 1}
    w.at(1.5)
    assert await watcher.poll_once("thread_1") is not None
    assert watcher.counts() == {"runs": 1, "threads": 1}
    assert ("run", "thread_1", "run_a") in w.scheduler
    assert await watcher.poll_once("thread_1", "run_a") is not None
    assert watcher.last_poll() is not None
    w.at(10)
    assert await watcher.poll_once("thread_1", "run_a") is None  # the watch ends
    assert w.types("run_a") == ["thread.run.in_progress", "thread.run.completed"]
    assert w.types("step_run_a_0") == ["thread.run.step.in_progress", "thread.run.step.completed"]
    # the run's last event goes out after its steps'
    assert w.lines.events[-1]["type"] == "thread.run.completed"
    outcome = watcher.outcomes[("thread_1", "run_a")]
    assert (outcome.status, outcome.exit_code) == ("completed", 0)
    assert watcher.counts() == {"runs": 0, "threads": 1}
    page, _ = await watcher.watches(finished=True)
    assert [(p["run_id"], p["active"]) for p in page] == [(None, True), ("run_a", False)]
    assert await watcher.remove_watch("thread_1", None)
    assert watcher.counts() == {"runs": 0, "threads": 0}
    assert ("thread", "thread_1") not in w.scheduler
    assert watcher.health()["ready"] is False and watcher.lag() == 0.0
    await w.close()


async def test_exit_codes_come_from_the_sources_success_statuses(tmp_path):
    w = World(tmp_path, [run("run_f", ("queued", 0), ("failed", 1))])
    assert await w.watcher.add_watch("thread_1", "run_f")
    assert await w.watcher.add_watch("thread_1", "run_gone")
    w.at(2)
    assert await w.watcher.poll_once("thread_1", "run_f") is None
    assert await w.watcher.poll_once("thread_1", "run_gone") is None
    failed, gone = (
        w.watcher.outcomes[("thread_1", "run_f")],
        w.watcher.outcomes[("thread_1", "run_gone")],
    )
    assert (failed.status, failed.exit_code) == ("failed", 1)
    assert gone.exit_code == 4 and "run_gone" in (gone.error or "")
    assert w.watcher.counts() == {"runs": 0, "threads": 0}
    page, _ = await w.watcher.watches()
    assert page == []  # a finished run is no longer active; a missing one is forgotten
    await w.close()


async def test_a_watch_at_capacity_is_refused_unless_it_exists(tmp_path):
    w = World(tmp_path, [])
    assert await w.watcher.add_watch("thread_1", "run_1")
    assert await w.watcher.at_capacity("thread_2", None, 1)
    assert not await w.watcher.at_capacity("thread_1", "run_1", 1)
    assert not await w.watcher.at_capacity("thread_2", None, 2)
    await w.close()


class ClosedOnce(Lines):
    """stdout whose reader is gone for one write (a closed pipe), back after that."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = True

    def write(self, bodies: Sequence[str]) -> None:
        if self.closed:
            self.closed = False
            raise BrokenPipeError(32, "Broken pipe")
        super().write(bodies)


async def test_a_write_that_fails_after_recording_reports_nothing_twice(tmp_path):
    """The poll fails with the sink's error, but its events are recorded: the next poll
    does not detect them again, and the next start writes them, same ids."""
    closed = ClosedOnce()
    w = World(
        tmp_path, [run("run_p", ("queued", 0), ("in_progress", 1), ("completed", 50))], closed
    )
    assert await w.watcher.add_watch("thread_1", "run_p")
    w.at(2)
    with pytest.raises(BrokenPipeError):
        await w.watcher.poll_once("thread_1", "run_p")
    assert await w.watcher.poll_once("thread_1", "run_p") is not None
    assert closed.events == []  # nothing detected a second time
    pending = await w.watcher.recorder.store.pending("stdout")
    assert [p.event_id for p in pending] != []
    await w.watcher.recorder.flush_pending()  # what the next start does first
    assert [e["id"] for e in closed.events] == [p.event_id for p in pending]
    assert [e["type"] for e in closed.events] == ["thread.run.in_progress"]
    assert await w.watcher.recorder.store.pending("stdout") == []
    await w.close()


async def test_a_finished_watch_is_listed_with_its_last_status(tmp_path):
    """`GET /v1/watches?all=1`'s page: a finished run shows how it ended, not null."""
    w = World(tmp_path, [run("run_c", ("queued", 0), ("completed", 1))])
    assert await w.watcher.add_watch("thread_1", "run_c")
    w.at(2)
    assert await w.watcher.poll_once("thread_1", "run_c") is None
    page, _ = await w.watcher.watches(finished=True)
    assert [(p["run_id"], p["active"], p["status"]) for p in page] == [
        ("run_c", False, "completed")
    ]
    await w.close()
