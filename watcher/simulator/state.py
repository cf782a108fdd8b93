"""Pure: a scenario at clock time t → run and step objects shaped like the spec's RunObject
and RunStepObject (their shapes: `assistants_objects`), pages of lists, and every
transition so far. No I/O, no clock.

An index built once makes a lookup O(1) and a status a bisect of its timeline; a list
request builds only the objects of its page, so 10,000 runs or 320 steps stay cheap.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import Any

from watcher.simulator.assistants_objects import (
    RUN_TERMINAL,
    STEP_TERMINAL,
    RunIndex,
    run_object,
    step_object,
)
from watcher.simulator.longrunning import LongRunning
from watcher.simulator.longrunning_state import LongRunningWorld
from watcher.simulator.paging import PageQuery, page_positions
from watcher.simulator.scenario import Scenario

__all__ = ["RUN_TERMINAL", "STEP_TERMINAL", "PageQuery", "World", "page_positions"]


def _list_body(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


class _Thread:
    """A thread's runs by creation time (ties in definition order)."""

    def __init__(self, runs: list[RunIndex]) -> None:
        self.runs = sorted(runs, key=lambda r: r.spec.created)
        self.created = [r.spec.created for r in self.runs]
        self.pos = {r.spec.id: i for i, r in enumerate(self.runs)}


class World:
    """An index over a scenario, answering at any clock time t; `epoch` is unix time of 0."""

    def __init__(self, scenario: Scenario, epoch: float) -> None:
        self.scenario = scenario
        self.epoch = epoch
        self._runs: dict[tuple[str, str], RunIndex] = {}
        self._threads: dict[str, _Thread] = {}
        self._transitions: tuple[list[float], list[dict[str, Any]]] | None = None
        self.long_running = LongRunningWorld(scenario.long_running, epoch)
        for thread in scenario.threads:
            runs = [RunIndex(thread.id, spec) for spec in thread.runs]
            self._runs.update(((thread.id, r.spec.id), r) for r in runs)
            self._threads[thread.id] = _Thread(runs)

    def has_thread(self, thread_id: str) -> bool:
        return thread_id in self._threads

    def poll_after_ms(self, thread_id: str, run_id: str) -> int | None:
        run = self._runs.get((thread_id, run_id))
        return run.spec.poll_after_ms if run is not None else None

    def _run_at(self, thread_id: str, run_id: str, t: float) -> RunIndex | None:
        run = self._runs.get((thread_id, run_id))
        return run if run is not None and run.times[0] <= t else None

    def run(self, thread_id: str, run_id: str, t: float) -> dict[str, Any] | None:
        """The run at t, or None when it is unknown or not created yet."""
        run = self._run_at(thread_id, run_id, t)
        return None if run is None else run_object(run, t, self.epoch)

    def list_runs(self, thread_id: str, t: float, q: PageQuery) -> dict[str, Any] | None:
        """A ListRunsResponse body, or None when the thread is unknown."""
        thread = self._threads.get(thread_id)
        if thread is None:
            return None
        picked, more = page_positions(bisect.bisect_right(thread.created, t), thread.pos, q)
        return _list_body([run_object(thread.runs[i], t, self.epoch) for i in picked], more)

    def list_steps(
        self, thread_id: str, run_id: str, t: float, q: PageQuery, *, content: bool = False
    ) -> dict[str, Any] | None:
        """A ListRunStepsResponse body, or None when the run is unknown or not created yet."""
        run = self._run_at(thread_id, run_id, t)
        if run is None:
            return None
        picked, more = page_positions(bisect.bisect_right(run.created, t), run.step_pos, q)
        return _list_body([step_object(run, i, t, self.epoch, content) for i in picked], more)

    def step(
        self, thread_id: str, run_id: str, step_id: str, t: float, *, content: bool = False
    ) -> dict[str, Any] | None:
        """The step at t, or None when it (or its run) is unknown or not created yet."""
        run = self._run_at(thread_id, run_id, t)
        i = None if run is None else run.step_pos.get(step_id)
        if run is None or i is None or run.created[i] > t:
            return None
        return step_object(run, i, t, self.epoch, content)

    def transitions_until(self, t: float) -> list[dict[str, Any]]:
        """Every status change at or before t, in time order (a run before its steps).

        Each: kind (thread.run | thread.run.step), id, thread_id, run_id, status, `at`
        (clock seconds) and `at_unix` (float); the long-running kinds' have kind (their
        `object` name), id, status, at and at_unix. A repeated status is no change."""
        if self._transitions is None:
            times, items = _all_transitions(self._runs.values(), self.epoch)
            if self.scenario.long_running != LongRunning():  # theirs after runs at equal times
                items = sorted(items + self.long_running.transitions(), key=lambda x: x["at"])
                times = [x["at"] for x in items]
            self._transitions = times, items
        times, items = self._transitions
        return [dict(x) for x in items[: bisect.bisect_right(times, t)]]


def _all_transitions(runs: Iterable[RunIndex], epoch: float) -> tuple[list[float], list[Any]]:
    out: list[tuple[float, bool, dict[str, Any]]] = []
    for run in runs:
        thread_id, run_id = run.thread_id, run.spec.id
        objects = [("thread.run", run_id, run.spec.timeline)]
        objects += [("thread.run.step", s.id, s.timeline) for s in run.spec.steps]
        for kind, obj_id, timeline in objects:
            previous = None
            for status, at in timeline:
                if status != previous:
                    item: dict[str, Any] = {"kind": kind, "id": obj_id, "thread_id": thread_id}
                    item |= {"run_id": run_id, "status": status, "at": at, "at_unix": epoch + at}
                    out.append((at, kind != "thread.run", item))
                previous = status
    out.sort(key=lambda x: x[:2])
    return [x[0] for x in out], [x[2] for x in out]
