"""Simulator scenarios: threads, runs and steps whose statuses move on a timeline.

A scenario is JSON (see `watcher/scenarios/default.json`), parsed into frozen dataclasses.
Times are seconds of the simulator's clock; `epoch` is the unix time of clock 0. A status
holds from its time until the next entry's; statuses are free strings, so future ones pass.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from watcher.core.ids import is_valid_id
from watcher.simulator.longrunning import SCENARIO_KEYS, LongRunning, parse_long_running

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

Timeline = tuple[tuple[str, float], ...]
Check = Callable[[Any], bool]
TOOLS = ("code_interpreter", "file_search", "function")
STEP_TYPES = ("message_creation", "tool_calls")
_KEYS = {
    "scenario": {"epoch", "threads", "description", *SCENARIO_KEYS},
    "thread": {"id", "runs"},
    "run": {"id", "assistant_id", "model", "timeline", "poll_after_ms", "steps"},
    "step": {"id", "type", "tools", "timeline", "usage"},
}


class ScenarioError(ValueError):
    """A scenario that cannot be used; the one-line message names the field."""


@dataclass(frozen=True, slots=True)
class StepSpec:
    """A run step: its type, tools (for tool_calls) and status timeline."""

    id: str
    type: str  # message_creation | tool_calls
    timeline: Timeline
    tools: tuple[str, ...] = ()
    usage: tuple[int, int] = (100, 20)  # prompt, completion tokens


@dataclass(frozen=True, slots=True)
class RunSpec:
    """A run: it exists from its first timeline time on."""

    id: str
    timeline: Timeline
    steps: tuple[StepSpec, ...] = ()
    assistant_id: str = "asst_sim"
    model: str = "gpt-4o"
    poll_after_ms: int | None = None  # sent as `openai-poll-after-ms` on GET run

    @property
    def created(self) -> float:
        return self.timeline[0][1]


@dataclass(frozen=True, slots=True)
class ThreadSpec:
    id: str
    runs: tuple[RunSpec, ...]


@dataclass(frozen=True, slots=True)
class Scenario:
    threads: tuple[ThreadSpec, ...]
    epoch: float | None = None  # None: the wall clock when the app is created
    long_running: LongRunning = field(default_factory=LongRunning)  # responses, batches, …


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


def _random_run(
    rng: random.Random, run_id: str, start: float, duration: float, n_steps: int, done: int = 0
) -> RunSpec:
    """A run from queued to its end; its first `done` steps are completed at clock 0
    (a run that had been going for a while when the watch began)."""
    active = 0.0 if done else start + rng.uniform(0.2, 1.5)
    end = active + rng.uniform(duration * 0.3, duration * 0.9)
    # every run exists from clock 0 (queued), so a watch configured up front finds it
    timeline: list[tuple[str, float]] = [("queued", 0.0), ("in_progress", active)]
    pause_at, pause = end, 0.0
    if rng.random() < 0.25:  # a tool round trip through requires_action
        pause_at = active + (end - active) * rng.uniform(0.3, 0.6)
        pause = rng.uniform(0.3, 2.0)
        timeline += [("requires_action", pause_at), ("in_progress", pause_at + pause)]
        end += pause
    final = rng.choices(
        ["completed", "failed", "cancelled", "expired", "incomplete"], [80, 8, 5, 3, 4]
    )[0]
    if final == "cancelled":
        timeline.append(("cancelling", end - 0.2))
    timeline.append((final, end))
    last_status = {"failed": "failed", "cancelled": "cancelled"}.get(final, "expired")

    def wall(work: float) -> float:
        """No step moves while the run waits in requires_action."""
        at = active + work
        return at if at < pause_at else at + pause

    steps: list[StepSpec] = []
    span = (end - active - pause) / max(n_steps - done, 1)
    for i in range(n_steps):
        w0 = (i - done) * span + 0.05
        if i < done:
            s0 = s1 = 0.0
        else:
            s1 = min(wall(w0 + span * rng.uniform(0.3, 0.95)), end)
            s0 = min(wall(w0), s1)  # no step starts after the run has ended
        status = "completed" if i < n_steps - 1 or final == "completed" else last_status
        tool = rng.random() < 0.6
        steps.append(
            StepSpec(
                id=f"step_{run_id.removeprefix('run_')}_{i:03d}",
                type="tool_calls" if tool else "message_creation",
                timeline=(("in_progress", s0), (status, s1)),
                tools=(rng.choice(TOOLS),) if tool else (),
                usage=(rng.randint(50, 2000), rng.randint(5, 500)),
            )
        )
    return RunSpec(id=run_id, timeline=tuple(timeline), steps=tuple(steps))


def generate_scenario(
    *,
    runs: int,
    seed: int,
    threads: int = 10,
    duration: float = 30.0,
    long_runs: int = 0,
    long_run_steps: int = 320,
    long_run_done: int = 0,
    max_steps: int = 12,
    epoch: float | None = None,
) -> Scenario:
    """Seeded random realistic runs over `threads` threads, all ended within `duration` s.

    The first `long_runs` runs have `long_run_steps` steps, `long_run_done` of them already
    completed at clock 0; the same seed gives the same scenario. Every run exists (queued)
    from clock 0.
    """
    rng = random.Random(seed)
    buckets: list[list[RunSpec]] = [[] for _ in range(max(1, threads))]
    for i in range(runs):
        long = i < long_runs
        n = long_run_steps if long else rng.randint(1, max_steps)
        start = rng.uniform(0, duration * 0.3)
        done = min(long_run_done, n - 1) if long else 0
        buckets[i % len(buckets)].append(
            _random_run(rng, f"run_g{seed}_{i:05d}", start, duration * 0.65, n, done)
        )
    return Scenario(
        threads=tuple(
            ThreadSpec(id=f"thread_g{seed}_{t:03d}", runs=tuple(b)) for t, b in enumerate(buckets)
        ),
        epoch=epoch,
    )
