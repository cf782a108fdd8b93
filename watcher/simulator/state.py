"""Pure: a scenario at clock time t → run and step objects shaped like the spec's RunObject
and RunStepObject, pages of lists, and every transition so far. No I/O, no clock.

An index built once makes a lookup O(1) and a status a bisect of its timeline; a list
request builds only the objects of its page, so 10,000 runs or 320 steps stay cheap.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import Any

from watcher.simulator.longrunning import LongRunning
from watcher.simulator.longrunning_state import LongRunningWorld
from watcher.simulator.paging import PageQuery, page_positions
from watcher.simulator.scenario import TOOLS, RunSpec, Scenario, StepSpec

__all__ = ["RUN_TERMINAL", "STEP_TERMINAL", "PageQuery", "World", "page_positions"]

RUN_TERMINAL = frozenset({"cancelled", "failed", "completed", "incomplete", "expired"})
STEP_TERMINAL = frozenset({"cancelled", "failed", "completed", "expired"})
_AT = {"completed": "completed_at", "failed": "failed_at", "cancelled": "cancelled_at"}
_STEP_AT = {**_AT, "expired": "expired_at"}
_ARGS = '{"city": "Paris", "unit": "celsius"}'
_CALL = {"name": "get_weather", "arguments": _ARGS}
_ERROR = {"code": "server_error", "message": "Sorry, something went wrong."}
_WEATHER = {"name": "get_weather", "description": "The current weather in a city."}
_TOOL_DEFS: dict[str, dict[str, Any]] = {
    "code_interpreter": {"type": "code_interpreter"},
    "file_search": {"type": "file_search"},
    "function": {"type": "function", "function": _WEATHER},
}


def _list_body(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


def _usage(prompt: int, completion: int) -> dict[str, int]:
    total = prompt + completion
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}


class _Run:
    """A run, its steps by creation time (ties in definition order), and their lookups."""

    def __init__(self, thread_id: str, spec: RunSpec) -> None:
        self.thread_id, self.spec = thread_id, spec
        self.times = [t for _, t in spec.timeline]
        self.steps = sorted(spec.steps, key=lambda s: s.timeline[0][1])
        self.created = [s.timeline[0][1] for s in self.steps]
        self.step_times = [[t for _, t in s.timeline] for s in self.steps]
        self.step_pos = {s.id: i for i, s in enumerate(self.steps)}
        used = {tool for s in self.steps for tool in s.tools}
        if any(status == "requires_action" for status, _ in spec.timeline):
            used.add("function")
        self.tools = [_TOOL_DEFS[name] for name in TOOLS if name in used]
        prompt, completion = (sum(s.usage[n] for s in spec.steps) for n in (0, 1))
        self.usage = _usage(prompt, completion)


class _Thread:
    """A thread's runs by creation time (ties in definition order)."""

    def __init__(self, runs: list[_Run]) -> None:
        self.runs = sorted(runs, key=lambda r: r.spec.created)
        self.created = [r.spec.created for r in self.runs]
        self.pos = {r.spec.id: i for i, r in enumerate(self.runs)}


class World:
    """An index over a scenario, answering at any clock time t; `epoch` is unix time of 0."""

    def __init__(self, scenario: Scenario, epoch: float) -> None:
        self.scenario = scenario
        self.epoch = epoch
        self._runs: dict[tuple[str, str], _Run] = {}
        self._threads: dict[str, _Thread] = {}
        self._transitions: tuple[list[float], list[dict[str, Any]]] | None = None
        self.long_running = LongRunningWorld(scenario.long_running, epoch)
        for thread in scenario.threads:
            runs = [_Run(thread.id, spec) for spec in thread.runs]
            self._runs.update(((thread.id, r.spec.id), r) for r in runs)
            self._threads[thread.id] = _Thread(runs)

    def _unix(self, seconds: float) -> int:
        return int(self.epoch + seconds)

    def has_thread(self, thread_id: str) -> bool:
        return thread_id in self._threads

    def poll_after_ms(self, thread_id: str, run_id: str) -> int | None:
        run = self._runs.get((thread_id, run_id))
        return run.spec.poll_after_ms if run is not None else None

    def _run_at(self, thread_id: str, run_id: str, t: float) -> _Run | None:
        run = self._runs.get((thread_id, run_id))
        return run if run is not None and run.times[0] <= t else None

    def run(self, thread_id: str, run_id: str, t: float) -> dict[str, Any] | None:
        """The run at t, or None when it is unknown or not created yet."""
        run = self._run_at(thread_id, run_id, t)
        return None if run is None else self._run_object(run, t)

    def list_runs(self, thread_id: str, t: float, q: PageQuery) -> dict[str, Any] | None:
        """A ListRunsResponse body, or None when the thread is unknown."""
        thread = self._threads.get(thread_id)
        if thread is None:
            return None
        picked, more = page_positions(bisect.bisect_right(thread.created, t), thread.pos, q)
        return _list_body([self._run_object(thread.runs[i], t) for i in picked], more)

    def list_steps(
        self, thread_id: str, run_id: str, t: float, q: PageQuery, *, content: bool = False
    ) -> dict[str, Any] | None:
        """A ListRunStepsResponse body, or None when the run is unknown or not created yet."""
        run = self._run_at(thread_id, run_id, t)
        if run is None:
            return None
        picked, more = page_positions(bisect.bisect_right(run.created, t), run.step_pos, q)
        return _list_body([self._step_object(run, i, t, content) for i in picked], more)

    def step(
        self, thread_id: str, run_id: str, step_id: str, t: float, *, content: bool = False
    ) -> dict[str, Any] | None:
        """The step at t, or None when it (or its run) is unknown or not created yet."""
        run = self._run_at(thread_id, run_id, t)
        i = None if run is None else run.step_pos.get(step_id)
        if run is None or i is None or run.created[i] > t:
            return None
        return self._step_object(run, i, t, content)

    def _run_object(self, run: _Run, t: float) -> dict[str, Any]:
        spec = run.spec
        status, since = spec.timeline[bisect.bisect_right(run.times, t) - 1]
        terminal = status in RUN_TERMINAL
        started = next((s for st, s in spec.timeline if st == "in_progress" and s <= t), None)
        expires = since if status == "expired" else None if terminal else spec.created + 600
        obj: dict[str, Any] = {
            "id": spec.id,
            "object": "thread.run",
            "created_at": self._unix(spec.created),
            "assistant_id": spec.assistant_id,
            "thread_id": run.thread_id,
            "status": status,
            **dict.fromkeys(("required_action", "last_error", "expires_at", "started_at")),
            **dict.fromkeys(("cancelled_at", "failed_at", "completed_at", "incomplete_details")),
            "model": spec.model,
            "instructions": "You are a helpful assistant. (simulated)",
            "tools": run.tools,
            "metadata": {},
            "usage": dict(run.usage) if terminal else None,
            "temperature": 1.0,
            "top_p": 1.0,
            **dict.fromkeys(("max_prompt_tokens", "max_completion_tokens")),
            "truncation_strategy": {"type": "auto", "last_messages": None},
            "tool_choice": "auto",
            "parallel_tool_calls": True,
            "response_format": "auto",
        }
        if expires is not None:
            obj["expires_at"] = self._unix(expires)
        if started is not None:
            obj["started_at"] = self._unix(started)
        if status in _AT:
            obj[_AT[status]] = self._unix(since)
        if status == "requires_action":
            call = {"id": f"call_{spec.id}", "type": "function", "function": _CALL}
            obj["required_action"] = {
                "type": "submit_tool_outputs",
                "submit_tool_outputs": {"tool_calls": [call]},
            }
        elif status == "failed":
            obj["last_error"] = _ERROR
        elif status == "incomplete":
            obj["incomplete_details"] = {"reason": "max_completion_tokens"}
        return obj

    def _step_object(self, run: _Run, i: int, t: float, content: bool) -> dict[str, Any]:
        spec = run.steps[i]
        status, since = spec.timeline[bisect.bisect_right(run.step_times[i], t) - 1]
        done = status in STEP_TERMINAL
        obj: dict[str, Any] = {
            "id": spec.id,
            "object": "thread.run.step",
            "created_at": self._unix(run.created[i]),
            "run_id": run.spec.id,
            "assistant_id": run.spec.assistant_id,
            "thread_id": run.thread_id,
            "type": spec.type,
            "status": status,
            "step_details": _details(spec, done, content),
            "last_error": _ERROR if status == "failed" else None,
            **dict.fromkeys(("expired_at", "cancelled_at", "failed_at", "completed_at")),
            "metadata": {},
            "usage": _usage(*spec.usage) if done else None,
        }
        if status in _STEP_AT:
            obj[_STEP_AT[status]] = self._unix(since)
        return obj

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


def _all_transitions(runs: Iterable[_Run], epoch: float) -> tuple[list[float], list[Any]]:
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


def _details(spec: StepSpec, done: bool, content: bool) -> dict[str, Any]:
    """RunStepDetailsMessageCreationObject or RunStepDetailsToolCallsObject."""
    if spec.type != "tool_calls":
        return {"type": "message_creation", "message_creation": {"message_id": f"msg_{spec.id}"}}
    calls: list[dict[str, Any]] = []
    for n, tool in enumerate(spec.tools):
        call: dict[str, Any] = {"id": f"call_{spec.id}_{n}", "type": tool}
        if tool == "code_interpreter":
            outputs = [{"type": "logs", "logs": "42\n"}] if done else []
            call[tool] = {"input": "print(6 * 7)", "outputs": outputs}
        elif tool == "file_search":
            result: dict[str, Any] = {"file_id": "file-sim0001", "file_name": "handbook.md"}
            result["score"] = 0.82
            if content:
                result["content"] = [{"type": "text", "text": "Refunds take 5 working days."}]
            ranking = {"ranker": "default_2024_08_21", "score_threshold": 0.0}
            call[tool] = {"ranking_options": ranking, "results": [result]} if done else {}
        else:
            output = '{"temperature": 21, "unit": "celsius"}' if done else None
            call[tool] = {**_CALL, "output": output}
        calls.append(call)
    return {"type": "tool_calls", "tool_calls": calls}
