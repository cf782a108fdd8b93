"""Simulator scenarios: threads, runs and steps whose statuses move on a timeline.

A scenario is JSON (see `watcher/scenarios/default.json`), parsed into the frozen
dataclasses of `scenario_specs` (importable from here, as is `scenario_generator`'s
`generate_scenario`). Times are seconds of the simulator's clock; `epoch` is the unix time
of clock 0. A status holds from its time until the next entry's; statuses are free
strings, so future ones pass.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from watcher.core.ids import is_valid_id
from watcher.simulator.longrunning import SCENARIO_KEYS, parse_long_running
from watcher.simulator.scenario_generator import generate_scenario
from watcher.simulator.scenario_specs import (
    STEP_TYPES,
    TOOLS,
    RunSpec,
    Scenario,
    StepSpec,
    ThreadSpec,
    Timeline,
)

__all__ = [
    "TOOLS",
    "RunSpec",
    "Scenario",
    "ScenarioError",
    "StepSpec",
    "ThreadSpec",
    "default_scenario",
    "generate_scenario",
    "load_scenario",
    "parse_scenario",
]

Check = Callable[[Any], bool]
_KEYS = {
    "scenario": {"epoch", "threads", "description", *SCENARIO_KEYS},
    "thread": {"id", "runs"},
    "run": {"id", "assistant_id", "model", "timeline", "poll_after_ms", "steps"},
    "step": {"id", "type", "tools", "timeline", "usage"},
}


class ScenarioError(ValueError):
    """A scenario that cannot be used; the one-line message names the field."""


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _seconds(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def _is_list(value: Any) -> bool:
    return isinstance(value, list)


def _text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _usage(value: Any) -> bool:
    keys = {"prompt_tokens", "completion_tokens"}
    return isinstance(value, dict) and set(value) <= keys and all(map(_count, value.values()))


def _get(raw: dict[str, Any], where: str, key: str, default: Any, ok: Check, what: str) -> Any:
    value = raw.get(key, default)
    if not ok(value):
        raise ScenarioError(f"{where}.{key}: must be {what}")
    return value


def _known(raw: dict[str, Any], where: str, kind: str) -> None:
    for key in raw:
        if key not in _KEYS[kind]:
            raise ScenarioError(f"{where}.{key}: unknown field")


def _obj(raw: Any, where: str, kind: str, seen: set[str]) -> tuple[dict[str, Any], str]:
    """The object and its ID, which must be plain and unique among `seen`."""
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: must be an object")
    _known(raw, where, kind)
    value = raw.get("id")
    if not is_valid_id(value) or value in seen:
        raise ScenarioError(f"{where}.id: must be a plain, unique ID (got {value!r})")
    seen.add(str(value))
    return raw, str(value)


def _timeline(raw: Any, where: str) -> Timeline:
    if not isinstance(raw, list) or not raw:
        raise ScenarioError(f"{where}.timeline: must be a non-empty list of [status, seconds]")
    out: list[tuple[str, float]] = []
    for i, entry in enumerate(raw):
        ok = isinstance(entry, list) and len(entry) == 2 and _text(entry[0])
        if not ok or not _seconds(entry[1]):
            raise ScenarioError(f"{where}.timeline[{i}]: must be [status, seconds >= 0]")
        if out and entry[1] < out[-1][1]:
            raise ScenarioError(f"{where}.timeline[{i}]: times must not go back")
        out.append((entry[0], float(entry[1])))
    return tuple(out)


def _step(raw: Any, where: str, seen: set[str]) -> StepSpec:
    raw, step_id = _obj(raw, where, "step", seen)
    kind = _get(raw, where, "type", "message_creation", STEP_TYPES.__contains__, str(STEP_TYPES))
    tools = tuple(_get(raw, where, "tools", [], _is_list, "a list"))
    tools = tools or (("function",) if kind == "tool_calls" else ())
    if any(t not in TOOLS for t in tools) or (tools and kind != "tool_calls"):
        raise ScenarioError(f"{where}.tools: tool_calls steps only, each one of {TOOLS}")
    usage = _get(raw, where, "usage", {}, _usage, "{prompt_tokens, completion_tokens} >= 0")
    counts = (usage.get("prompt_tokens", 100), usage.get("completion_tokens", 20))
    return StepSpec(step_id, kind, _timeline(raw.get("timeline"), where), tools, counts)


def _run(raw: Any, where: str, seen: set[str]) -> RunSpec:
    raw, run_id = _obj(raw, where, "run", seen)
    steps, step_ids = _get(raw, where, "steps", [], _is_list, "a list"), set[str]()
    return RunSpec(
        id=run_id,
        timeline=_timeline(raw.get("timeline"), where),
        steps=tuple(_step(s, f"{where}.steps[{i}]", step_ids) for i, s in enumerate(steps)),
        assistant_id=_get(raw, where, "assistant_id", "asst_sim", _text, "a non-empty string"),
        model=_get(raw, where, "model", "gpt-4o", _text, "a non-empty string"),
        poll_after_ms=_get(
            raw, where, "poll_after_ms", None, lambda v: v is None or _count(v), "null or >= 0"
        ),
    )


def parse_scenario(obj: Any) -> Scenario:
    """A scenario from decoded JSON; `ScenarioError` names the first bad field."""
    if isinstance(obj, dict) and "threads" not in obj and any(k in obj for k in SCENARIO_KEYS):
        obj = {**obj, "threads": []}  # only long-running objects
    if not isinstance(obj, dict) or not isinstance(obj.get("threads"), list):
        raise ScenarioError("threads: a scenario is an object with a list of threads")
    _known(obj, "scenario", "scenario")
    epoch = obj.get("epoch")
    if epoch is not None and not _seconds(epoch):
        raise ScenarioError("epoch: must be unix seconds")
    thread_ids: set[str] = set()
    threads: list[ThreadSpec] = []
    for ti, raw in enumerate(obj["threads"]):
        where = f"threads[{ti}]"
        raw, thread_id = _obj(raw, where, "thread", thread_ids)
        runs, run_ids = _get(raw, where, "runs", [], _is_list, "a list"), set[str]()
        specs = tuple(_run(r, f"{where}.runs[{i}]", run_ids) for i, r in enumerate(runs))
        threads.append(ThreadSpec(thread_id, specs))
    try:
        long_running = parse_long_running(obj)
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None
    return Scenario(threads=tuple(threads), epoch=epoch, long_running=long_running)


def load_scenario(path: Path | str) -> Scenario:
    """A scenario from a JSON file; unreadable or invalid → `ScenarioError`."""
    try:
        return parse_scenario(json.loads(Path(path).read_text(encoding="utf-8")))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScenarioError(f"{path}: invalid JSON: {exc}") from None


def default_scenario() -> Scenario:
    """The demo: `watcher/scenarios/default.json`, shipped with the package."""
    text = resources.files("watcher").joinpath("scenarios/default.json").read_text("utf-8")
    return parse_scenario(json.loads(text))
