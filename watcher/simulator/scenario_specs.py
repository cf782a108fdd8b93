"""A scenario's parts as frozen dataclasses: threads, runs and steps, each with its status
timeline, and the long-running objects beside them (`longrunning`).

Times are seconds of the simulator's clock; a status holds from its time until the next
entry's. `scenario` parses them from JSON, `scenario_generator` makes random ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from watcher.simulator.longrunning import LongRunning

__all__ = ["STEP_TYPES", "TOOLS", "RunSpec", "Scenario", "StepSpec", "ThreadSpec", "Timeline"]

Timeline = tuple[tuple[str, float], ...]
TOOLS = ("code_interpreter", "file_search", "function")
STEP_TYPES = ("message_creation", "tool_calls")


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
