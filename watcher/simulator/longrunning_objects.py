"""Pure: the long-running objects at clock time t, shaped like the spec's Response, Batch,
FineTuningJob and VectorStoreFileBatchObject.

Progress counts (a batch's `request_counts`, a file batch's `file_counts`) rise linearly over
the `in_progress` phase: to the full count when it ends in success (finalizing, completed),
to half when it ends otherwise; a phase with no end creeps to 90% over a minute.
"""

from __future__ import annotations

import bisect
from typing import Any

from watcher.simulator.kinds import BATCH, FILE_BATCH, FINE_TUNING_JOB, RESPONSE
from watcher.simulator.longrunning import (
    BatchSpec,
    FileBatchSpec,
    FineTuningJobSpec,
    ResponseSpec,
    Timeline,
)

__all__ = ["Shaper", "progress"]

_DAY = 86_400
_TEXT = "Background work done: 3 findings, 2 follow-ups. (simulated)"


def _at(timeline: Timeline, t: float) -> tuple[str, float]:
    """The status at t and since when (t at or after the first time)."""
    return timeline[bisect.bisect_right([x for _, x in timeline], t) - 1]


def _first(timeline: Timeline, status: str, t: float) -> float | None:
    return next((x for s, x in timeline if s == status and x <= t), None)


def progress(timeline: Timeline, t: float, success: frozenset[str]) -> float:
    """How far the first `in_progress` phase has got at t, 0..1 (see the module doc)."""
    start = next((i for i, (s, _) in enumerate(timeline) if s == "in_progress"), None)
    if start is None or timeline[start][1] > t:
        return 0.0
    t0 = timeline[start][1]
    end = next((e for e in timeline[start:] if e[0] != "in_progress"), None)
    if end is None:
        return 0.9 * min(1.0, (t - t0) / 60)
    scale = 1.0 if end[0] in success else 0.5
    span = end[1] - t0
    return scale if span <= 0 or t >= end[1] else scale * (t - t0) / span


class Shaper:
    """Builds each kind's object at t from its spec; `epoch` is the unix time of clock 0."""

    def __init__(self, epoch: float) -> None:
        self.epoch = epoch

    def _unix(self, seconds: float | None) -> int | None:
        return None if seconds is None else int(self.epoch + seconds)

    def response(self, spec: ResponseSpec, t: float) -> dict[str, Any]:
        status, since = _at(spec.timeline, t)
        done = status in ("completed", "incomplete")
        inp, out = spec.usage
        text = {"type": "output_text", "text": _TEXT, "annotations": [], "logprobs": []}
        message: dict[str, Any] = {"id": f"msg_{spec.id.removeprefix('resp_')}"}
        message |= {"type": "message", "role": "assistant", "content": [text]}
        message["status"] = "completed" if status == "completed" else "incomplete"
        usage: dict[str, Any] = {"input_tokens": inp, "output_tokens": out}
        usage["input_tokens_details"] = {"cached_tokens": 0, "cache_write_tokens": 0}
        usage["output_tokens_details"] = {"reasoning_tokens": 0}
        usage["total_tokens"] = inp + out
        return {
            "id": spec.id,
            "object": RESPONSE.object,
            "created_at": self._unix(spec.timeline[0][1]),
            "status": status,
            "background": spec.background,
            "completed_at": self._unix(since) if status == "completed" else None,
            "error": {"code": "server_error", "message": "The model failed. (simulated)"}
            if status == "failed"
            else None,
            "incomplete_details": {"reason": "max_output_tokens"}
            if status == "incomplete"
            else None,
            "instructions": None,
            "max_output_tokens": None,
            "model": spec.model,
            "output": [message] if done else [],
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "service_tier": "default",
            "store": True,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [],
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": usage if done else None,
            "user": None,
            "metadata": dict(spec.metadata),
        }

    def batch(self, spec: BatchSpec, t: float) -> dict[str, Any]:
        tl = spec.timeline
        status, _ = _at(tl, t)
        created = tl[0][1]
        started = _first(tl, "in_progress", t) is not None
        p = progress(tl, t, frozenset({"finalizing", "completed"}))
        ok_total = spec.total - spec.failed
        done, failed = (int(p * ok_total), int(p * spec.failed)) if started else (0, 0)
        counts = {"total": spec.total if started else 0, "completed": done, "failed": failed}
        ended = status in BATCH.terminal
        short = spec.id.removeprefix("batch_")
        obj: dict[str, Any] = {
            "id": spec.id,
            "object": BATCH.object,
            "endpoint": spec.endpoint,
            "model": spec.model,
            "errors": None,
            "input_file_id": f"file-in{short}",
            "completion_window": spec.completion_window,
            "status": status,
            "output_file_id": f"file-out{short}" if ended and done else None,
            "error_file_id": f"file-err{short}" if ended and failed else None,
            "created_at": self._unix(created),
            "in_progress_at": self._unix(_first(tl, "in_progress", t)),
            "expires_at": self._unix(created + _DAY),
        }
        for name in ("finalizing", "completed", "failed", "expired", "cancelling", "cancelled"):
            obj[f"{name}_at"] = self._unix(_first(tl, name, t))
        if status == "failed" and not started:
            error = {"code": "invalid_json_line", "message": "Line 1 is not valid JSON."}
            obj["errors"] = {"object": "list", "data": [error | {"param": None, "line": 1}]}
        usage = None
        if status == "completed":
            inp, out = spec.total * 120, spec.total * 40
            usage = {"input_tokens": inp, "input_tokens_details": {"cached_tokens": 0}}
            usage |= {"output_tokens": out, "output_tokens_details": {"reasoning_tokens": 0}}
            usage["total_tokens"] = inp + out
        return obj | {"request_counts": counts, "usage": usage, "metadata": dict(spec.metadata)}

    def job(self, spec: FineTuningJobSpec, t: float) -> dict[str, Any]:
        tl = spec.timeline
        status, since = _at(tl, t)
        ok = status == FINE_TUNING_JOB.success
        finish = None
        if status == "running":
            end = next((x for s, x in tl if x > since and s != "running"), since + 3600)
            finish = spec.estimated_finish if spec.estimated_finish is not None else end
        short = spec.id.removeprefix("ftjob-")
        hyper = {"batch_size": 1, "learning_rate_multiplier": 1.8, "n_epochs": 3}
        error = None
        if status == "failed":
            message = "The training file has too few examples. (simulated)"
            error = {"code": "invalid_training_file", "message": message, "param": "training_file"}
        return {
            "object": FINE_TUNING_JOB.object,
            "id": spec.id,
            "model": spec.model,
            "created_at": self._unix(tl[0][1]),
            "error": error,
            "fine_tuned_model": f"ft:{spec.model}:sim::{short}" if ok else None,
            "finished_at": self._unix(since) if status in FINE_TUNING_JOB.terminal else None,
            "hyperparameters": hyper,
            "organization_id": "org-sim",
            "result_files": [f"file-res{short}"] if ok else [],
            "status": status,
            "trained_tokens": spec.trained_tokens if ok else None,
            "training_file": f"file-train{short}",
            "validation_file": None,
            "integrations": [],
            "seed": 42,
            "estimated_finish": self._unix(finish),
            "method": {"type": "supervised", "supervised": {"hyperparameters": hyper}},
            "metadata": dict(spec.metadata),
        }

    def file_batch(self, spec: FileBatchSpec, t: float) -> dict[str, Any]:
        status, _ = _at(spec.timeline, t)
        p = progress(spec.timeline, t, frozenset({"completed"}))
        done, failed = int(p * (spec.total - spec.failed)), int(p * spec.failed)
        rest = spec.total - done - failed
        counts = {"in_progress": rest, "completed": done, "failed": failed, "cancelled": 0}
        if status == "cancelled" or status == "failed":
            counts |= {"in_progress": 0, status: counts[status] + rest}
        return {
            "id": spec.id,
            "object": FILE_BATCH.object,
            "created_at": self._unix(spec.timeline[0][1]),
            "vector_store_id": spec.vector_store_id,
            "status": status,
            "file_counts": counts | {"total": spec.total},
        }
