"""Pure: a scenario's long-running objects at clock time t (see `longrunning_objects`),
newest-first pages of batches and fine-tuning jobs, and every status change.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from watcher.simulator.kinds import BATCH, FILE_BATCH, FINE_TUNING_JOB, RESPONSE
from watcher.simulator.longrunning import BatchSpec, FineTuningJobSpec, LongRunning, Timeline
from watcher.simulator.longrunning_objects import Shaper
from watcher.simulator.paging import PageQuery, page_positions

__all__ = ["LongRunningWorld"]


class _Spec(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def timeline(self) -> Timeline: ...


class _Index:
    """One kind's objects by creation time (ties in definition order) for lookups and pages."""

    def __init__(self, specs: Sequence[_Spec]) -> None:
        self.specs = sorted(specs, key=lambda s: s.timeline[0][1])
        self.created = [s.timeline[0][1] for s in self.specs]
        self.pos = {s.id: i for i, s in enumerate(self.specs)}

    def get(self, object_id: str, t: float) -> Any:
        i = self.pos.get(object_id)
        return None if i is None or self.created[i] > t else self.specs[i]

    def page(self, t: float, limit: int, after: str | None) -> tuple[list[Any], bool]:
        q = PageQuery(limit=limit, order="desc", after=after)
        picked, more = page_positions(bisect.bisect_right(self.created, t), self.pos, q)
        return [self.specs[i] for i in picked], more


class LongRunningWorld:
    """An index over a scenario's long-running objects; `epoch` is the unix time of clock 0."""

    def __init__(self, specs: LongRunning, epoch: float) -> None:
        self.specs, self.epoch = specs, epoch
        self._responses = _Index(specs.responses)
        self._batches = _Index(specs.batches)
        self._jobs = _Index(specs.fine_tuning_jobs)
        self._shape = Shaper(epoch)
        self._file_batches = {(s.vector_store_id, s.id): s for s in specs.file_batches}

    def response(self, response_id: str, t: float) -> dict[str, Any] | None:
        """The response at t; None when unknown, not created yet or gone (past `gone_at`)."""
        spec = self._responses.get(response_id, t)
        if spec is None or (spec.gone_at is not None and t >= spec.gone_at):
            return None
        return self._shape.response(spec, t)

    def batch(self, batch_id: str, t: float) -> dict[str, Any] | None:
        spec: BatchSpec | None = self._batches.get(batch_id, t)
        return None if spec is None else self._shape.batch(spec, t)

    def list_batches(self, t: float, limit: int, after: str | None) -> dict[str, Any]:
        """A ListBatchesResponse: newest first, from after `after`."""
        specs, more = self._batches.page(t, limit, after)
        data = [self._shape.batch(s, t) for s in specs]
        first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
        return {"object": "list", "data": data, "first_id": first, "last_id": last} | {
            "has_more": more
        }

    def fine_tuning_job(self, job_id: str, t: float) -> dict[str, Any] | None:
        spec: FineTuningJobSpec | None = self._jobs.get(job_id, t)
        return None if spec is None else self._shape.job(spec, t)

    def list_fine_tuning_jobs(self, t: float, limit: int, after: str | None) -> dict[str, Any]:
        """A ListPaginatedFineTuningJobsResponse: newest first; the spec gives it no ids."""
        specs, more = self._jobs.page(t, limit, after)
        return {"object": "list", "data": [self._shape.job(s, t) for s in specs], "has_more": more}

    def file_batch(self, vector_store_id: str, batch_id: str, t: float) -> dict[str, Any] | None:
        spec = self._file_batches.get((vector_store_id, batch_id))
        if spec is None or spec.timeline[0][1] > t:
            return None
        return self._shape.file_batch(spec, t)

    def transitions(self) -> list[dict[str, Any]]:
        """Every status change (kind: the `object` name, id, status, at), in time order."""
        out: list[dict[str, Any]] = []
        groups: Mapping[str, Sequence[_Spec]] = {
            RESPONSE.object: self.specs.responses,
            BATCH.object: self.specs.batches,
            FINE_TUNING_JOB.object: self.specs.fine_tuning_jobs,
            FILE_BATCH.object: self.specs.file_batches,
        }
        for kind, specs in groups.items():
            for spec in specs:
                previous = None
                for status, at in spec.timeline:
                    if status != previous:
                        item = {"kind": kind, "id": spec.id, "status": status, "at": at}
                        out.append(item | {"at_unix": self.epoch + at})
                    previous = status
        out.sort(key=lambda x: x["at"])
        return out
