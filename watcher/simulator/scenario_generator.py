"""Seeded random scenarios: realistic runs and steps for the benchmark, the soak and tests."""

from __future__ import annotations

import random

from watcher.simulator.scenario_specs import TOOLS, RunSpec, Scenario, StepSpec, ThreadSpec

__all__ = ["generate_scenario"]


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
