"""The watcher against a fake of the API written from OpenAI's spec (`tests/spec_api.py`),
not from our simulator: what a server that follows the spec, or reads it differently, gets."""

from __future__ import annotations

import io
import json

import anyio
import httpx
import pytest
from structlog.testing import capture_logs

from tests.cli import run_cli
from tests.hostile_api import HostileApi
from tests.openapi_schema import errors, long_running_errors
from tests.spec_api import SpecApi, batch, file_batch, fine_tuning_job, response, run, step
from tests.test_hostile_paging import settings, until
from watcher.service.daemon import serve

pytestmark = pytest.mark.anyio

FB_PATH = "/v1/vector_stores/vs_1/file_batches/vsfb_1"


def test_the_fakes_objects_are_the_specs():
    assert errors(run("run_1", "requires_action"), "RunObject") == []
    assert errors(step("step_1", "expired"), "RunStepObject") == []
    body = file_batch("vsfb_1", "completed", "vs_1", "vector_store.files_batch")
    assert long_running_errors(body, "VectorStoreFileBatchObject") == []
    assert long_running_errors(response("resp_1", None), "Response") == []
    assert long_running_errors(batch("batch_1", "finalizing"), "Batch") == []
    assert long_running_errors(fine_tuning_job("ftjob-1", "queued"), "FineTuningJob") == []


async def follow(tmp_path, api: SpecApi, watch: dict[str, str]):
    """`watch`'s way: the daemon in-process until its watch ends; its events and outcome."""
    out = io.StringIO()
    with anyio.fail_after(30):
        watcher = await serve(
            settings(tmp_path, watch), transport=httpx.ASGITransport(app=api.app),
            stdout=out, handle_signals=False, exit_when_done=True,
        )  # fmt: skip
    [outcome] = watcher.outcomes.values()
    return [json.loads(line) for line in out.getvalue().splitlines()], outcome.exit_code


# every status the spec lists for each kind, in an order it may take them; the last ends it
SINGLES = [
    ("resp_1", response, "/v1/responses/resp_1", ["queued", "in_progress", "completed"], 0),
    ("resp_1", response, "/v1/responses/resp_1", [None, "in_progress", "incomplete"], 1),
    ("resp_1", response, "/v1/responses/resp_1", ["in_progress", "failed"], 1),
    ("resp_1", response, "/v1/responses/resp_1", ["queued", "cancelled"], 1),
    (
        "batch_1",
        batch,
        "/v1/batches/batch_1",
        ["validating", "in_progress", "finalizing", "completed"],
        0,
    ),
    ("batch_1", batch, "/v1/batches/batch_1", ["in_progress", "cancelling", "cancelled"], 1),
    ("batch_1", batch, "/v1/batches/batch_1", ["validating", "failed"], 1),
    ("batch_1", batch, "/v1/batches/batch_1", ["in_progress", "expired"], 1),
    (
        "ftjob-1",
        fine_tuning_job,
        "/v1/fine_tuning/jobs/ftjob-1",
        ["validating_files", "queued", "running", "succeeded"],
        0,
    ),
    ("ftjob-1", fine_tuning_job, "/v1/fine_tuning/jobs/ftjob-1", ["queued", "failed"], 1),
    ("ftjob-1", fine_tuning_job, "/v1/fine_tuning/jobs/ftjob-1", ["running", "cancelled"], 1),
]
KEYS = {"resp_1": "response_id", "batch_1": "batch_id", "ftjob-1": "fine_tuning_job_id"}


@pytest.mark.parametrize(("oid", "make", "path", "statuses", "code"), SINGLES)
async def test_each_kind_through_the_specs_statuses(tmp_path, oid, make, path, statuses, code):
    api = SpecApi({path: lambda n: make(oid, statuses[min(n, len(statuses) - 1)])})
    events, exit_code = await follow(tmp_path, api, {KEYS[oid]: oid})
    name = make(oid, "x")["object"]
    reported = [s for s in statuses if s is not None]  # a null status is no status yet
    assert [e["type"] for e in events] == [f"{name}.{s}" for s in reported]
    assert [e["previous_status"] for e in events] == [None, *reported[:-1]]
    assert events[-1]["data"] == make(oid, reported[-1])  # as the API gave it, unknown fields too
    assert exit_code == code


async def test_a_run_through_the_specs_statuses_and_its_steps(tmp_path):
    runs = ["queued", "requires_action", "in_progress", "cancelling", "cancelled"]
    steps = [
        [],
        [step("step_1", "in_progress")],
        [step("step_1", "completed"), step("step_2", "in_progress"), step("step_3", "in_progress")],
        [step("step_1", "completed"), step("step_2", "in_progress"), step("step_3", "in_progress")],
        [step("step_1", "completed"), step("step_2", "cancelled"), step("step_3", "expired")],
    ]
    api = SpecApi(
        {RUN_PATH: lambda n: run("run_1", runs[min(n, 4)])},
        steps=lambda after: _listed(steps[min(api.gets[RUN_PATH], 5) - 1], after),
    )
    events, exit_code = await follow(tmp_path, api, {"thread_id": "thread_1", "run_id": "run_1"})
    assert [(e["data"]["id"], e["type"]) for e in events] == [
        ("run_1", "thread.run.queued"),
        ("run_1", "thread.run.requires_action"),
        ("step_1", "thread.run.step.in_progress"),
        ("run_1", "thread.run.in_progress"),
        ("step_1", "thread.run.step.completed"),
        ("step_2", "thread.run.step.in_progress"),
        ("step_3", "thread.run.step.in_progress"),
        ("run_1", "thread.run.cancelling"),
        ("step_2", "thread.run.step.cancelled"),
        ("step_3", "thread.run.step.expired"),
        ("run_1", "thread.run.cancelled"),  # a run's end after its steps'
    ]
    assert exit_code == 1


def _listed(items, after):
    """As the spec has it: the items after `after`, one page (`has_more` false)."""
    ids = [s["id"] for s in items]
    return (items[ids.index(after) + 1 :] if after in ids else items), False


def _file_batch_answers(object: str):
    statuses = ["in_progress", "completed"]
    return lambda n: file_batch("vsfb_1", statuses[min(n, 1)], "vs_1", object)


# The spec's schema says `vector_store.files_batch` (its enum, and OpenAI's SDKs); the same
# schema's description and the GET's example say `vector_store.file_batch`. A server written
# from either is followed, and its events are named `data.object + "." + data.status`.
@pytest.mark.parametrize("object", ["vector_store.files_batch", "vector_store.file_batch"])
async def test_a_file_batch_under_either_name_the_spec_gives_it(tmp_path, object):
    api = SpecApi({FB_PATH: _file_batch_answers(object)})
    cfg = settings(tmp_path, {"vector_store_id": "vs_1", "file_batch_id": "vsfb_1"})
    events, _ = await until(api, lambda: False, cfg, exit_when_done=True)
    assert [(e["type"], e["previous_status"]) for e in events] == [
        (f"{object}.in_progress", None),
        (f"{object}.completed", "in_progress"),
    ]


def test_watch_follows_a_file_batch_named_as_the_specs_example_to_exit_0():
    """Before: every poll "the response is not a vector_store.files_batch", then exit 124."""
    api = HostileApi(lambda path, n: _file_batch_answers("vector_store.file_batch")(n))
    try:
        done = run_cli(
            "watch", "vs_1", "vsfb_1", "--exit-status", "--timeout", "30s", "--json",
            OPENAI_BASE_URL=api.base_url, OPENAI_API_KEY="sk-test", timeout=60,
        )  # fmt: skip
    finally:
        api.close()
    assert done.returncode == 0, done.stderr[-800:]
    types = [json.loads(line)["type"] for line in done.stdout.splitlines()]
    assert types == ["vector_store.file_batch.in_progress", "vector_store.file_batch.completed"]


RUN_PATH = "/v1/threads/thread_1/runs/run_1"


def _steps_after(after: str | None, polls: int, mode: str):
    """step_1 done, step_2 running, then done: listed from `after` as `mode` reads it."""
    items = [
        step("step_1", "completed"),
        step("step_2", "completed" if polls > 2 else "in_progress"),
    ]
    ids = [s["id"] for s in items]
    if after in ids and mode == "inclusive":  # from the cursor, itself included
        items = items[ids.index(after) :]
    elif after in ids and mode == "exclusive":  # as the spec says
        items = items[ids.index(after) + 1 :]
    return items, False  # mode "ignores": the whole list whatever `after` says


# Some servers that implement the Assistants API read `after` as "from", or ignore it; the
# cursor kept after the finished steps must not report a finished step a second time.
@pytest.mark.parametrize("mode", ["exclusive", "inclusive", "ignores"])
async def test_a_steps_list_that_repeats_the_cursor_reports_nothing_twice(tmp_path, mode):
    statuses = ["in_progress", "in_progress", "in_progress", "completed"]
    api = SpecApi(
        {RUN_PATH: lambda n: run("run_1", statuses[min(n, 3)])},
        steps=lambda after: _steps_after(after, api.gets[RUN_PATH], mode),
    )
    cfg = settings(tmp_path, {"thread_id": "thread_1", "run_id": "run_1"})
    events, _ = await until(api, lambda: False, cfg, exit_when_done=True)
    seen = [(e["data"]["id"], e["type"], e["previous_status"]) for e in events]
    assert seen == [
        ("run_1", "thread.run.in_progress", None),
        ("step_1", "thread.run.step.completed", None),
        ("step_2", "thread.run.step.in_progress", None),
        ("step_2", "thread.run.step.completed", "in_progress"),
        ("run_1", "thread.run.completed", "in_progress"),
    ]


async def test_a_response_whose_status_is_still_null_is_no_failure(tmp_path):
    """The spec lets `status` be null; before, each such poll warned "the response is not a
    response" and counted as a failed poll."""
    statuses = [None, None, "in_progress", "completed"]
    api = SpecApi({"/v1/responses/resp_1": lambda n: response("resp_1", statuses[min(n, 3)])})
    with capture_logs() as logs:
        events, exit_code = await follow(tmp_path, api, {"response_id": "resp_1"})
    assert [e["type"] for e in events] == ["response.in_progress", "response.completed"]
    assert exit_code == 0
    assert [e for e in logs if e["log_level"] in ("warning", "error")] == []


async def test_small_pages_and_an_empty_last_page_with_has_more(tmp_path):
    """A server that caps `limit` at 2 and says `has_more` on its last full page: every step
    once, in order, and the watch ends."""
    done = [step(f"step_{i}", "completed") for i in range(5)]

    def listed(after: str | None):
        ids = [s["id"] for s in done]
        rest = done[ids.index(after) + 1 :] if after in ids else done
        return rest[:2], bool(rest)  # `has_more` true with the last items: an empty page after

    api = SpecApi({RUN_PATH: lambda n: run("run_1", "completed")}, steps=listed)
    events, exit_code = await follow(tmp_path, api, {"thread_id": "thread_1", "run_id": "run_1"})
    assert [e["data"]["id"] for e in events] == [*(s["id"] for s in done), "run_1"]
    assert exit_code == 0
    afters = [after for path, after in api.requests if path.endswith("/steps")]
    assert afters[:4] == [None, "step_1", "step_3", "step_4"]
