"""A small fake of OpenAI's API written from its spec (tests/openapi/*.3.1-nullable.yaml),
not from our simulator: every optional field present and null, an unknown field beside
them, lists with `first_id` / `last_id` / `has_more`, and whatever status a test scripts.

`SpecApi(objects, steps=…)`: `objects` maps a GET path to a function of the number of that
path's GETs so far (from 0) that gives the body, or a (status code, body, headers) triple;
`steps(after)` gives a run's steps list (items, has_more) for an `after` cursor.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse

Answer = dict[str, Any] | tuple[int, dict[str, Any], dict[str, str]]

EXTRA = {"x_field_from_a_newer_api": {"nested": [1, None]}}


def run(rid: str, status: str, thread_id: str = "thread_1") -> dict[str, Any]:
    """A `RunObject`: every required field, the nullable ones null."""
    nulls = "required_action last_error expires_at started_at cancelled_at failed_at"
    nulls += " completed_at incomplete_details usage max_prompt_tokens max_completion_tokens"
    return {
        "id": rid,
        "object": "thread.run",
        "created_at": 1_700_000_000,
        "thread_id": thread_id,
        "assistant_id": "asst_1",
        "status": status,
        **dict.fromkeys(nulls.split()),
        "model": "gpt-4o",
        "instructions": "",
        "tools": [],
        "metadata": {},
        "truncation_strategy": {"type": "auto", "last_messages": None},
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "response_format": "auto",
        "temperature": None,
        "top_p": None,
        **EXTRA,
    }


def step(sid: str, status: str, run_id: str = "run_1") -> dict[str, Any]:
    """A `RunStepObject` of a message creation, the nullable fields null."""
    nulls = "last_error expired_at cancelled_at failed_at completed_at metadata usage"
    return {
        "id": sid,
        "object": "thread.run.step",
        "created_at": 1_700_000_000,
        "assistant_id": "asst_1",
        "thread_id": "thread_1",
        "run_id": run_id,
        "type": "message_creation",
        "status": status,
        "step_details": {"type": "message_creation", "message_creation": {"message_id": "msg_1"}},
        **dict.fromkeys(nulls.split()),
        **EXTRA,
    }


def file_batch(fid: str, status: str, vs: str, object: str) -> dict[str, Any]:
    """A `VectorStoreFileBatchObject`; `object` as the server spells it (see the test)."""
    counts = {"in_progress": 0, "completed": 1, "failed": 0, "cancelled": 0, "total": 1}
    return {
        "id": fid,
        "object": object,
        "created_at": 1_700_000_000,
        "vector_store_id": vs,
        "status": status,
        "file_counts": counts,
        **EXTRA,
    }


def page(items: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """A list object as `ListRunStepsResponse` has it."""
    first, last = (items[0]["id"], items[-1]["id"]) if items else (None, None)
    return {
        "object": "list",
        "data": items,
        "first_id": first,
        "last_id": last,
        "has_more": has_more,
    }


class SpecApi:
    def __init__(
        self,
        objects: dict[str, Callable[[int], Answer]],
        steps: Callable[[str | None], tuple[list[dict[str, Any]], bool]] | None = None,
    ) -> None:
        self.gets: Counter[str] = Counter()
        self.requests: list[tuple[str, str | None]] = []  # (path, after)
        self.changed = anyio.Event()

        async def handle(request: Request) -> JSONResponse:
            await anyio.sleep(0)
            path, after = request.url.path, request.query_params.get("after")
            self.requests.append((path, after))
            self.changed.set()
            self.changed = anyio.Event()
            if path.endswith("/steps") and steps is not None:
                return JSONResponse(page(*steps(after)))
            if path not in objects:
                error = {"message": "No such object", "type": "invalid_request_error"}
                return JSONResponse({"error": error | {"param": None, "code": None}}, 404)
            n = self.gets[path]
            self.gets[path] += 1
            answer = objects[path](n)
            if isinstance(answer, tuple):
                code, body, headers = answer
                return JSONResponse(body, code, headers=headers)
            return JSONResponse(answer)

        self.app = Starlette()
        self.app.add_route("/{path:path}", handle)


def response(rid: str, status: str | None) -> dict[str, Any]:
    """A `Response` in background mode (its `status` may be null, as the spec allows)."""
    nulls = "error incomplete_details instructions temperature top_p usage completed_at"
    return {
        "id": rid,
        "object": "response",
        "created_at": 1_700_000_000.5,
        "status": status,
        "background": True,
        **dict.fromkeys(nulls.split()),
        "model": "gpt-4o",
        "tools": [],
        "output": [],
        "parallel_tool_calls": True,
        "metadata": {},
        "tool_choice": "auto",
        **EXTRA,
    }


def batch(bid: str, status: str, created_at: int = 1_700_000_000) -> dict[str, Any]:
    """A `Batch`, its optional timestamps null."""
    nulls = "errors output_file_id error_file_id in_progress_at expires_at finalizing_at"
    nulls += " completed_at failed_at expired_at cancelling_at cancelled_at metadata"
    counts = {"total": 10, "completed": 4, "failed": 1}
    return {
        "id": bid,
        "object": "batch",
        "endpoint": "/v1/chat/completions",
        "input_file_id": "file-1",
        "completion_window": "24h",
        "status": status,
        "created_at": created_at,
        **dict.fromkeys(nulls.split()),
        "request_counts": counts,
        **EXTRA,
    }


def fine_tuning_job(jid: str, status: str) -> dict[str, Any]:
    """A `FineTuningJob`, its nullable fields null."""
    nulls = "error finished_at fine_tuned_model trained_tokens validation_file"
    nulls += " estimated_finish integrations metadata"
    return {
        "id": jid,
        "object": "fine_tuning.job",
        "created_at": 1_700_000_000,
        "status": status,
        **dict.fromkeys(nulls.split()),
        "hyperparameters": {"n_epochs": "auto", "batch_size": "auto"},
        "model": "gpt-4o-mini",
        "organization_id": "org-1",
        "result_files": [],
        "training_file": "file-1",
        "seed": 7,
        **EXTRA,
    }
