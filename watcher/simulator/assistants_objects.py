"""Pure: a run and its steps at clock time t, shaped like the spec's RunObject and
RunStepObject (the shapes `state.World` serves); no I/O, no clock."""

from __future__ import annotations

import bisect
from typing import Any

from watcher.simulator.scenario import TOOLS, RunSpec, StepSpec

__all__ = ["RUN_TERMINAL", "STEP_TERMINAL", "RunIndex", "run_object", "step_object"]

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


def _usage(prompt: int, completion: int) -> dict[str, int]:
    total = prompt + completion
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}


class RunIndex:
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


def run_object(run: RunIndex, t: float, epoch: float) -> dict[str, Any]:
    """The run at t; `epoch` is the unix time of clock time 0."""
    spec = run.spec
    status, since = spec.timeline[bisect.bisect_right(run.times, t) - 1]
    terminal = status in RUN_TERMINAL
    started = next((s for st, s in spec.timeline if st == "in_progress" and s <= t), None)
    expires = since if status == "expired" else None if terminal else spec.created + 600
    obj: dict[str, Any] = {
        "id": spec.id,
        "object": "thread.run",
        "created_at": int(epoch + spec.created),
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
        obj["expires_at"] = int(epoch + expires)
    if started is not None:
        obj["started_at"] = int(epoch + started)
    if status in _AT:
        obj[_AT[status]] = int(epoch + since)
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


def step_object(run: RunIndex, i: int, t: float, epoch: float, content: bool) -> dict[str, Any]:
    """The run's i-th step (by creation time) at t; `content`: file search results' text."""
    spec = run.steps[i]
    status, since = spec.timeline[bisect.bisect_right(run.step_times[i], t) - 1]
    done = status in STEP_TERMINAL
    obj: dict[str, Any] = {
        "id": spec.id,
        "object": "thread.run.step",
        "created_at": int(epoch + run.created[i]),
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
        obj[_STEP_AT[status]] = int(epoch + since)
    return obj


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
