"""Pure: a scenario at clock time t → run and step objects shaped as the API returns them."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

from watcher.simulator.scenario import RunSpec, Scenario, StepSpec

__all__ = ["World"]

RUN_TERMINAL = frozenset({"cancelled", "failed", "completed", "incomplete", "expired"})
STEP_TERMINAL = frozenset({"cancelled", "failed", "completed", "expired"})
_AT_FIELD = {
    "completed": "completed_at",
    "failed": "failed_at",
    "cancelled": "cancelled_at",
    "expired": "expired_at",
}


def _status(times: list[float], timeline: tuple[tuple[str, float], ...], t: float) -> int:
    """Index of the timeline entry in force at t, or -1 before the first."""
    return bisect.bisect_right(times, t) - 1


@dataclass(slots=True)
class _Run:
    thread_id: str
    spec: RunSpec
    times: list[float]
    step_times: list[list[float]]


class World:
    """An index over a scenario: O(1) lookup of a run, bisect for a status."""

    def __init__(self, scenario: Scenario, epoch: float) -> None:
        self.scenario = scenario
        self.epoch = int(epoch)
        self.epoch_exact = epoch
        self.runs: dict[tuple[str, str], _Run] = {}
        self.thread_runs: dict[str, list[_Run]] = {}
        for thread in scenario.threads:
            items = []
            for spec in thread.runs:
                run = _Run(
                    thread_id=thread.id,
                    spec=spec,
                    times=[t for _, t in spec.timeline],
                    step_times=[[t for _, t in s.timeline] for s in spec.steps],
                )
                self.runs[(thread.id, spec.id)] = run
                items.append(run)
            items.sort(key=lambda r: r.spec.created)  # stable: ties keep definition order
            self.thread_runs[thread.id] = items

    def _ts(self, seconds: float) -> int:
        return self.epoch + int(seconds)

    def run(self, thread_id: str, run_id: str, t: float) -> dict[str, Any] | None:
        run = self.runs.get((thread_id, run_id))
        if run is None:
            return None
        return self.run_object(run, t)

    def run_object(self, run: _Run, t: float) -> dict[str, Any] | None:
        spec = run.spec
        i = _status(run.times, spec.timeline, t)
        if i < 0:
            return None
        status, since = spec.timeline[i]
        terminal = status in RUN_TERMINAL
        started = next((tt for st, tt in spec.timeline[: i + 1] if st == "in_progress"), None)
        prompt = sum(s.usage[0] for s in spec.steps)
        completion = sum(s.usage[1] for s in spec.steps)
        tools: list[dict[str, Any]] = [
            {"type": "code_interpreter"},
            {"type": "file_search"},
            {"type": "function", "function": {"name": "get_weather"}},
        ]
        return {
            "id": spec.id,
            "object": "thread.run",
            "created_at": self._ts(spec.created),
            "assistant_id": spec.assistant_id,
            "thread_id": run.thread_id,
            "status": status,
            "required_action": {
                "type": "submit_tool_outputs",
                "submit_tool_outputs": {
                    "tool_calls": [
                        {
                            "id": f"call_{spec.id}",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                        }
                    ]
                },
            }
            if status == "requires_action"
            else None,
            "last_error": {"code": "server_error", "message": "The simulated run failed."}
            if status == "failed"
            else None,
            "expires_at": None if terminal else self._ts(spec.created + 600),
            "started_at": self._ts(started) if started is not None else None,
            "cancelled_at": self._ts(since) if status == "cancelled" else None,
            "failed_at": self._ts(since) if status == "failed" else None,
            "completed_at": self._ts(since) if status == "completed" else None,
            "incomplete_details": {"reason": "max_completion_tokens"}
            if status == "incomplete"
            else None,
            "model": spec.model,
            "instructions": "You are a simulated assistant.",
            "tools": tools,
            "metadata": {},
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
            if terminal
            else None,
            "temperature": 1.0,
            "top_p": 1.0,
            "max_prompt_tokens": None,
            "max_completion_tokens": None,
            "truncation_strategy": {"type": "auto", "last_messages": None},
            "tool_choice": "auto",
            "parallel_tool_calls": True,
            "response_format": "auto",
        }

    def steps(self, thread_id: str, run_id: str, t: float) -> list[dict[str, Any]] | None:
        """Visible steps in creation order, or None when the run does not exist (yet)."""
        run = self.runs.get((thread_id, run_id))
        if run is None or _status(run.times, run.spec.timeline, t) < 0:
            return None
        return [
            self.step_object(run, spec, times, t)
            for spec, times in zip(run.spec.steps, run.step_times, strict=True)
            if times[0] <= t
        ]

    def step_object(
        self, run: _Run, spec: StepSpec, times: list[float], t: float
    ) -> dict[str, Any]:
        status, since = spec.timeline[_status(times, spec.timeline, t)]
        terminal = status in STEP_TERMINAL
        obj: dict[str, Any] = {
            "id": spec.id,
            "object": "thread.run.step",
            "created_at": self._ts(spec.timeline[0][1]),
            "run_id": run.spec.id,
            "assistant_id": run.spec.assistant_id,
            "thread_id": run.thread_id,
            "type": spec.type,
            "status": status,
            "step_details": self._details(spec, terminal),
            "last_error": {"code": "server_error", "message": "The simulated step failed."}
            if status == "failed"
            else None,
            "expired_at": None,
            "cancelled_at": None,
            "failed_at": None,
            "completed_at": None,
            "metadata": {},
            "usage": {
                "prompt_tokens": spec.usage[0],
                "completion_tokens": spec.usage[1],
                "total_tokens": sum(spec.usage),
            }
            if terminal
            else None,
        }
        if status in _AT_FIELD:
            obj[_AT_FIELD[status]] = self._ts(since)
        return obj

    def _details(self, spec: StepSpec, terminal: bool) -> dict[str, Any]:
        if spec.type == "message_creation":
            return {
                "type": "message_creation",
                "message_creation": {"message_id": f"msg_{spec.id}"},
            }
        calls: list[dict[str, Any]] = []
        for i, tool in enumerate(spec.tools):
            call_id = f"call_{spec.id}_{i}"
            if tool == "code_interpreter":
                calls.append(
                    {
                        "id": call_id,
                        "type": "code_interpreter",
                        "code_interpreter": {
                            "input": "print(6 * 7)",
                            "outputs": [{"type": "logs", "logs": "42"}] if terminal else [],
                        },
                    }
                )
            elif tool == "file_search":
                calls.append({"id": call_id, "type": "file_search", "file_search": {}})
            else:
                calls.append(
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {
                            "name": "get_weather",
                            "arguments": '{"city": "Paris"}',
                            "output": '{"temp": 21}' if terminal else None,
                        },
                    }
                )
        return {"type": "tool_calls", "tool_calls": calls}

    def thread_runs_at(self, thread_id: str, t: float) -> list[dict[str, Any]] | None:
        runs = self.thread_runs.get(thread_id)
        if runs is None:
            return None
        out = []
        for run in runs:
            obj = self.run_object(run, t)
            if obj is not None:
                out.append(obj)
        return out

    def transitions_until(self, t: float) -> list[dict[str, Any]]:
        """Every status change at or before t, in time order (runs before their steps)."""
        out: list[tuple[float, int, dict[str, Any]]] = []
        for run in self.runs.values():
            spec = run.spec
            for status, at in spec.timeline:
                if at <= t:
                    out.append(
                        (
                            at,
                            0,
                            {
                                "kind": "thread.run",
                                "id": spec.id,
                                "thread_id": run.thread_id,
                                "run_id": spec.id,
                                "status": status,
                                "at": at,
                                "at_unix": self.epoch_exact + at,
                            },
                        )
                    )
            for step in spec.steps:
                for status, at in step.timeline:
                    if at <= t:
                        out.append(
                            (
                                at,
                                1,
                                {
                                    "kind": "thread.run.step",
                                    "id": step.id,
                                    "thread_id": run.thread_id,
                                    "run_id": spec.id,
                                    "status": status,
                                    "at": at,
                                    "at_unix": self.epoch_exact + at,
                                },
                            )
                        )
        out.sort(key=lambda x: (x[0], x[1]))
        return [x[2] for x in out]
