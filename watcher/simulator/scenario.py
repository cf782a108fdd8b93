"""Simulator scenarios: threads, runs and steps whose statuses move on a timeline.

Times are seconds of the simulator's clock; `epoch` is the unix time of clock 0.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from watcher.ids import is_valid_id

__all__ = [
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
TOOLS = ("code_interpreter", "file_search", "function")


class ScenarioError(ValueError):
    """A scenario that cannot be used; the message names the field."""


@dataclass(frozen=True, slots=True)
class StepSpec:
    id: str
    type: str  # message_creation | tool_calls
    timeline: Timeline
    tools: tuple[str, ...] = ()
    usage: tuple[int, int] = (100, 20)  # prompt, completion tokens


@dataclass(frozen=True, slots=True)
class RunSpec:
    id: str
    timeline: Timeline
    steps: tuple[StepSpec, ...] = ()
    assistant_id: str = "asst_sim"
    model: str = "gpt-4o"
    poll_after_ms: int | None = None

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
    epoch: float | None = None


def _timeline(raw: Any, where: str) -> Timeline:
    if not isinstance(raw, list) or not raw:
        raise ScenarioError(f"{where}.timeline: must be a non-empty list of [status, time]")
    out: list[tuple[str, float]] = []
    for i, entry in enumerate(raw):
        ok = (
            isinstance(entry, list | tuple)
            and len(entry) == 2
            and isinstance(entry[0], str)
            and entry[0]
            and isinstance(entry[1], int | float)
        )
        if not ok:
            raise ScenarioError(f"{where}.timeline[{i}]: must be [status, seconds]")
        if out and entry[1] < out[-1][1]:
            raise ScenarioError(f"{where}.timeline[{i}]: times must not go back")
        out.append((entry[0], float(entry[1])))
    return tuple(out)


def _id(raw: dict[str, Any], where: str) -> str:
    value = raw.get("id")
    if not is_valid_id(value):
        raise ScenarioError(f"{where}.id: must be a plain ID (got {value!r})")
    return str(value)


def _step(raw: Any, where: str) -> StepSpec:
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: must be an object")
    kind = raw.get("type", "message_creation")
    if kind not in ("message_creation", "tool_calls"):
        raise ScenarioError(f"{where}.type: must be message_creation or tool_calls")
    tools = tuple(raw.get("tools", ["function"] if kind == "tool_calls" else []))
    if any(t not in TOOLS for t in tools):
        raise ScenarioError(f"{where}.tools: each must be one of {', '.join(TOOLS)}")
    usage = raw.get("usage") or {}
    return StepSpec(
        id=_id(raw, where),
        type=kind,
        timeline=_timeline(raw.get("timeline"), where),
        tools=tools,
        usage=(int(usage.get("prompt_tokens", 100)), int(usage.get("completion_tokens", 20))),
    )


def parse_scenario(obj: Any) -> Scenario:
    if not isinstance(obj, dict) or not isinstance(obj.get("threads"), list):
        raise ScenarioError("threads: a scenario is an object with a list of threads")
    threads: list[ThreadSpec] = []
    for ti, t in enumerate(obj["threads"]):
        where = f"threads[{ti}]"
        if not isinstance(t, dict):
            raise ScenarioError(f"{where}: must be an object")
        runs: list[RunSpec] = []
        for ri, r in enumerate(t.get("runs", [])):
            rw = f"{where}.runs[{ri}]"
            if not isinstance(r, dict):
                raise ScenarioError(f"{rw}: must be an object")
            runs.append(
                RunSpec(
                    id=_id(r, rw),
                    timeline=_timeline(r.get("timeline"), rw),
                    steps=tuple(
                        _step(s, f"{rw}.steps[{i}]") for i, s in enumerate(r.get("steps", []))
                    ),
                    assistant_id=str(r.get("assistant_id", "asst_sim")),
                    model=str(r.get("model", "gpt-4o")),
                    poll_after_ms=r.get("poll_after_ms"),
                )
            )
        threads.append(ThreadSpec(id=_id(t, where), runs=tuple(runs)))
    epoch = obj.get("epoch")
    if epoch is not None and not isinstance(epoch, int | float):
        raise ScenarioError("epoch: must be unix seconds")
    return Scenario(threads=tuple(threads), epoch=epoch)


def load_scenario(path: Path | str) -> Scenario:
    try:
        return parse_scenario(json.loads(Path(path).read_text(encoding="utf-8")))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{path}: invalid JSON: {exc}") from None


def default_scenario() -> Scenario:
    text = resources.files("watcher").joinpath("scenarios/default.json").read_text("utf-8")
    return parse_scenario(json.loads(text))


def _random_run(
    rng: random.Random, run_id: str, start: float, duration: float, n_steps: int
) -> RunSpec:
    active = start + rng.uniform(0.2, 1.5)
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

    def wall(work: float) -> float:
        """No step moves while the run waits in requires_action."""
        at = active + work
        return at if at < pause_at else at + pause

    steps: list[StepSpec] = []
    span = (end - active - pause) / max(n_steps, 1)
    for i in range(n_steps):
        w0 = i * span + 0.05
        w1 = w0 + span * rng.uniform(0.3, 0.95)
        s1 = min(wall(w1), end)
        s0 = min(wall(w0), s1)  # no step starts after the run has ended
        last = i == n_steps - 1
        status = (
            "completed"
            if not last or final == "completed"
            else {
                "failed": "failed",
                "cancelled": "cancelled",
                "expired": "expired",
                "incomplete": "expired",
            }[final]
        )
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
    max_steps: int = 12,
    epoch: float | None = None,
) -> Scenario:
    """Seeded random realistic runs, spread over `threads` threads and `duration` seconds."""
    rng = random.Random(seed)
    buckets: list[list[RunSpec]] = [[] for _ in range(max(1, threads))]
    for i in range(runs):
        n = long_run_steps if i < long_runs else rng.randint(1, max_steps)
        start = rng.uniform(0, duration * 0.3)
        buckets[i % len(buckets)].append(
            _random_run(rng, f"run_g{seed}_{i:05d}", start, duration * 0.65, n)
        )
    return Scenario(
        threads=tuple(
            ThreadSpec(id=f"thread_g{seed}_{t:03d}", runs=tuple(b)) for t, b in enumerate(buckets)
        ),
        epoch=epoch,
    )
