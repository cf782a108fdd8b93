"""`simulate --loop`: a scenario played again and again, so new runs keep starting while a
person tries `watch` and `run` against it by hand."""

from __future__ import annotations

from dataclasses import replace

from watcher.simulator.scenario import RunSpec, Scenario, StepSpec, ThreadSpec

__all__ = ["LOOP_HOURS", "loop_period", "looped"]

#: how long a looped scenario keeps starting runs
LOOP_HOURS = 3.0
PAUSE = 4.0  # seconds between the end of one round and the start of the next


def loop_period(scenario: Scenario) -> float:
    """Seconds per round: the scenario's last status time, and a pause."""
    times = [
        t
        for thread in scenario.threads
        for run in thread.runs
        for timeline in (run.timeline, *(s.timeline for s in run.steps))
        for _, t in timeline
    ]
    return max(times, default=0.0) + PAUSE


def _shift(run: RunSpec, n: int, offset: float) -> RunSpec:
    def moved(timeline: tuple[tuple[str, float], ...]) -> tuple[tuple[str, float], ...]:
        return tuple((status, t + offset) for status, t in timeline)

    steps = tuple(
        StepSpec(f"{s.id}_{n}", s.type, moved(s.timeline), s.tools, s.usage) for s in run.steps
    )
    return replace(run, id=f"{run.id}_{n}", timeline=moved(run.timeline), steps=steps)


def looped(scenario: Scenario, hours: float = LOOP_HOURS) -> Scenario:
    """Round 1 as written; round n (n >= 2) starts (n-1) periods later, its run and step ids
    ending `_n`, in the same threads."""
    period = loop_period(scenario)
    rounds = max(1, int(hours * 3600 / period))
    offsets = [(n, (n - 1) * period) for n in range(2, rounds + 1)]
    threads = tuple(
        ThreadSpec(
            thread.id, thread.runs + tuple(_shift(r, n, t) for n, t in offsets for r in thread.runs)
        )
        for thread in scenario.threads
    )
    return Scenario(threads=threads, epoch=scenario.epoch, long_running=scenario.long_running)
