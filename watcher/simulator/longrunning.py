"""Scenario lists for the long-running kinds: background responses, batches, fine-tuning jobs
and vector-store file batches, each with a status timeline like a run's.

An object exists from its first timeline time on; a status holds from its time until the
next entry's, and statuses are free strings (a cancelled response may later complete, as
Azure's do). See docs/simulator.md for the JSON; `longrunning_fields` checks each field.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from watcher.core.ids import is_valid_id
from watcher.simulator.kinds import BATCH, FILE_BATCH, FINE_TUNING_JOB, RESPONSE
from watcher.simulator.longrunning_fields import (
    FieldError,
    Fields,
    Metadata,
    Timeline,
    is_count,
    is_counts,
    is_seconds,
)

__all__ = [
    "SCENARIO_KEYS",
    "BatchSpec",
    "FileBatchSpec",
    "FineTuningJobSpec",
    "LongRunning",
    "ResponseSpec",
    "Timeline",
    "generate_long_running",
    "parse_long_running",
]

SCENARIO_KEYS = tuple(k.scenario_key for k in (RESPONSE, BATCH, FINE_TUNING_JOB, FILE_BATCH))
_KEYS = {
    "responses": {"id", "timeline", "model", "background", "gone_at", "usage", "metadata"},
    "batches": {"id", "timeline", "endpoint", "model", "completion_window", "request_counts"}
    | {"metadata"},
    "fine_tuning_jobs": {"id", "timeline", "model", "estimated_finish", "trained_tokens"}
    | {"metadata"},
    "file_batches": {"id", "timeline", "vector_store_id", "file_counts"},
}


@dataclass(frozen=True, slots=True)
class ResponseSpec:
    id: str
    timeline: Timeline
    model: str = "gpt-4o"
    background: bool = True
    gone_at: float | None = None  # from then on GET answers 404 (past retention)
    usage: tuple[int, int] = (812, 240)  # input, output tokens
    metadata: Metadata = ()


@dataclass(frozen=True, slots=True)
class BatchSpec:
    id: str
    timeline: Timeline
    endpoint: str = "/v1/chat/completions"
    model: str = "gpt-4o-mini"
    completion_window: str = "24h"
    total: int = 100  # requests; `failed` of them fail
    failed: int = 0
    metadata: Metadata = ()


@dataclass(frozen=True, slots=True)
class FineTuningJobSpec:
    id: str
    timeline: Timeline
    model: str = "gpt-4o-mini-2024-07-18"
    estimated_finish: float | None = None  # None: the end of its running phase
    trained_tokens: int = 5768
    metadata: Metadata = ()


@dataclass(frozen=True, slots=True)
class FileBatchSpec:
    id: str
    timeline: Timeline
    vector_store_id: str = "vs_sim"
    total: int = 10  # files; `failed` of them fail
    failed: int = 0


@dataclass(frozen=True, slots=True)
class LongRunning:
    responses: tuple[ResponseSpec, ...] = ()
    batches: tuple[BatchSpec, ...] = ()
    fine_tuning_jobs: tuple[FineTuningJobSpec, ...] = ()
    file_batches: tuple[FileBatchSpec, ...] = ()


def _response(f: Fields) -> ResponseSpec:
    usage = f.get("usage", {}, is_counts({"input_tokens", "output_tokens"}), "token counts >= 0")
    gone = f.get("gone_at", None, lambda v: v is None or is_seconds(v), "null or seconds >= 0")
    return ResponseSpec(
        f.id,
        f.timeline,
        model=f.text("model", "gpt-4o"),
        background=f.get("background", True, lambda v: isinstance(v, bool), "true or false"),
        gone_at=None if gone is None else float(gone),
        usage=(usage.get("input_tokens", 812), usage.get("output_tokens", 240)),
        metadata=f.metadata(),
    )


def _batch(f: Fields) -> BatchSpec:
    what = "{total, failed} >= 0 with failed <= total"
    counts = f.get("request_counts", {}, is_counts({"total", "failed"}), what)
    return BatchSpec(
        f.id,
        f.timeline,
        endpoint=f.text("endpoint", "/v1/chat/completions"),
        model=f.text("model", "gpt-4o-mini"),
        completion_window=f.text("completion_window", "24h"),
        total=counts.get("total", 100),
        failed=counts.get("failed", 0),
        metadata=f.metadata(),
    )


def _job(f: Fields) -> FineTuningJobSpec:
    finish = f.get(
        "estimated_finish", None, lambda v: v is None or is_seconds(v), "null or seconds >= 0"
    )
    return FineTuningJobSpec(
        f.id,
        f.timeline,
        model=f.text("model", "gpt-4o-mini-2024-07-18"),
        estimated_finish=None if finish is None else float(finish),
        trained_tokens=f.get("trained_tokens", 5768, is_count, "an integer >= 0"),
        metadata=f.metadata(),
    )


def _file_batch(f: Fields) -> FileBatchSpec:
    what = "{total, failed} >= 0 with failed <= total"
    counts = f.get("file_counts", {}, is_counts({"total", "failed"}), what)
    vs = f.get("vector_store_id", "vs_sim", is_valid_id, "a plain ID")
    return FileBatchSpec(f.id, f.timeline, vs, counts.get("total", 10), counts.get("failed", 0))


_PARSERS: dict[str, Callable[[Fields], Any]] = {
    "responses": _response,
    "batches": _batch,
    "fine_tuning_jobs": _job,
    "file_batches": _file_batch,
}


def parse_long_running(obj: dict[str, Any]) -> LongRunning:
    """The scenario's lists of responses, batches, jobs and file batches (each optional);
    `ValueError` naming the first bad field. IDs are unique within each list."""
    parsed: dict[str, tuple[Any, ...]] = {}
    for key, parse in _PARSERS.items():
        raw = obj.get(key, [])
        if not isinstance(raw, list):
            raise FieldError(f"{key}: must be a list")
        seen: set[str] = set()
        parsed[key] = tuple(
            parse(Fields(item, f"{key}[{i}]", _KEYS[key], seen)) for i, item in enumerate(raw)
        )
    return LongRunning(**parsed)


def generate_long_running(
    *, seed: int, batches: int = 0, fine_tuning_jobs: int = 0, duration: float = 30.0
) -> LongRunning:
    """Seeded batches and jobs created over `duration` s, most of them completing; the same
    seed gives the same lists (for discovery over long lists)."""
    rng = random.Random(seed)
    out_batches = []
    for i in range(batches):
        t0 = rng.uniform(0, duration * 0.5)
        t1, t2 = t0 + rng.uniform(0.2, 2), t0 + rng.uniform(duration * 0.2, duration * 0.45)
        final = rng.choices(["completed", "failed", "expired", "cancelled"], [85, 5, 5, 5])[0]
        tail = [(final, t2)]
        if final in ("completed", "cancelled"):
            tail = [("finalizing" if final == "completed" else "cancelling", t2), (final, t2 + 0.5)]
        timeline = (("validating", t0), ("in_progress", t1), *tail)
        total = rng.randint(1, 5000)
        out_batches.append(BatchSpec(f"batch_g{seed}_{i:05d}", timeline, total=total))
    jobs = []
    for i in range(fine_tuning_jobs):
        t0 = rng.uniform(0, duration * 0.5)
        t1, t2 = t0 + rng.uniform(0.2, 1), t0 + rng.uniform(1, 3)
        end = t2 + rng.uniform(duration * 0.1, duration * 0.45)
        final = rng.choices(["succeeded", "failed", "cancelled"], [85, 10, 5])[0]
        timeline = (("validating_files", t0), ("queued", t1), ("running", t2), (final, end))
        jobs.append(FineTuningJobSpec(f"ftjob-g{seed}-{i:05d}", timeline))
    return LongRunning(batches=tuple(out_batches), fine_tuning_jobs=tuple(jobs))
