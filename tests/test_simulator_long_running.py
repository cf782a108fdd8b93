"""The simulator's long-running kinds: responses, batches, fine-tuning jobs and vector-store
file batches on their timelines, every answer validated against OpenAI's strict spec."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.openapi_schema import long_running_errors as errors
from watcher.simulator.app import ManualClock, create_app
from watcher.simulator.kinds import KINDS, kind_of_id
from watcher.simulator.longrunning import generate_long_running
from watcher.simulator.scenario import (
    Scenario,
    ScenarioError,
    default_scenario,
    parse_scenario,
)
from watcher.simulator.state import World

pytestmark = pytest.mark.anyio

EPOCH = 1_764_590_000
RAW = {
    "epoch": EPOCH,
    "responses": [
        {"id": "resp_ok", "timeline": [["queued", 0], ["in_progress", 1], ["completed", 4]]},
        {"id": "resp_fail", "timeline": [["queued", 0], ["in_progress", 1], ["failed", 3]]},
        {"id": "resp_short", "timeline": [["in_progress", 0], ["incomplete", 2]]},
        {
            "id": "resp_azure",  # Azure: cancelled, then completed anyway
            "timeline": [["queued", 0], ["in_progress", 1], ["cancelled", 2], ["completed", 5]],
            "metadata": {"team": "search"},
        },
        {"id": "resp_gone", "timeline": [["queued", 0], ["completed", 1]], "gone_at": 3},
        {"id": "resp_sync", "background": False, "timeline": [["completed", 0]]},
    ],
    "batches": [
        {
            "id": "batch_ok",
            "timeline": [
                ["validating", 0],
                ["in_progress", 1],
                ["finalizing", 5],
                ["completed", 6],
            ],
            "request_counts": {"total": 200, "failed": 10},
            "metadata": {"nightly": "yes"},
        },
        {"id": "batch_bad", "timeline": [["validating", 0], ["failed", 1]]},
        {"id": "batch_late", "timeline": [["validating", 1], ["in_progress", 2], ["expired", 6]]},
        {
            "id": "batch_stop",
            "timeline": [
                ["validating", 2],
                ["in_progress", 2],
                ["cancelling", 4],
                ["cancelled", 5],
            ],
        },
    ],
    "fine_tuning_jobs": [
        {
            "id": "ftjob-ok",
            "timeline": [["validating_files", 0], ["queued", 1], ["running", 2], ["succeeded", 6]],
        },
        {
            "id": "ftjob-bad",
            "timeline": [["validating_files", 0], ["failed", 1]],
            "model": "gpt-4.1-mini-2025-04-14",
        },
        {
            "id": "ftjob-stop",
            "timeline": [["queued", 1], ["running", 2], ["cancelled", 4]],
            "estimated_finish": 30,
        },
    ],
    "file_batches": [
        {
            "id": "vsfb_ok",
            "vector_store_id": "vs_docs",
            "timeline": [["in_progress", 0], ["completed", 4]],
            "file_counts": {"total": 12, "failed": 2},
        },
        {"id": "vsfb_stop", "timeline": [["in_progress", 1], ["cancelled", 3]]},
        {"id": "vsfb_bad", "timeline": [["in_progress", 0], ["failed", 2]]},
    ],
}
SCENARIO = parse_scenario(RAW)
TIMES = [0, 0.5, 1, 1.5, 2, 3, 4, 4.5, 5, 5.5, 6, 7]


def client_for(app, **kwargs) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://sim/v1", **kwargs)


def paths(scenario: Scenario) -> list[tuple[str, str]]:
    lr = scenario.long_running
    out = [(f"/responses/{s.id}", "Response") for s in lr.responses]
    out += [(f"/batches/{s.id}", "Batch") for s in lr.batches]
    out += [(f"/fine_tuning/jobs/{s.id}", "FineTuningJob") for s in lr.fine_tuning_jobs]
    out += [
        (f"/vector_stores/{s.vector_store_id}/file_batches/{s.id}", "VectorStoreFileBatchObject")
        for s in lr.file_batches
    ]
    return out


async def walk(scenario: Scenario, times) -> dict[str, dict[float, dict]]:
    """Every object's answer at each time, each validated (404s as ErrorResponse); lists too.
    Returns id → time → object."""
    clock = ManualClock()
    seen: dict[str, dict[float, dict]] = {}
    async with client_for(create_app(scenario, clock=clock)) as client:
        for t in times:
            clock.advance(t - clock.now())
            for path, schema in paths(scenario):
                r = await client.get(path)
                if r.status_code == 404:
                    assert errors(r.json(), "ErrorResponse") == []
                    continue
                assert r.status_code == 200 and errors(r.json(), schema) == [], r.json()
                seen.setdefault(r.json()["id"], {})[t] = r.json()
            batches = (await client.get("/batches", params={"limit": 100})).json()
            assert errors(batches, "ListBatchesResponse") == []
            jobs = (await client.get("/fine_tuning/jobs", params={"limit": 100})).json()
            assert errors(jobs, "ListPaginatedFineTuningJobsResponse") == []
    return seen


def statuses(seen, prefix: str) -> set[str]:
    return {o["status"] for i, by_t in seen.items() if i.startswith(prefix) for o in by_t.values()}


async def test_every_status_of_every_kind_validates():
    seen = await walk(SCENARIO, TIMES)
    for kind in KINDS.values():
        assert statuses(seen, kind.id_prefix) == set(kind.statuses), kind.name
        objects = [o for i, by_t in seen.items() if i.startswith(kind.id_prefix) for o in by_t]
        assert objects
    assert {o["object"] for by_t in seen.values() for o in by_t.values()} == {
        "response",
        "batch",
        "fine_tuning.job",
        "vector_store.files_batch",
    }


async def test_a_response_moves_and_carries_its_fields():
    seen = await walk(SCENARIO, TIMES)
    ok = seen["resp_ok"]
    assert [ok[t]["status"] for t in (0, 1, 4)] == ["queued", "in_progress", "completed"]
    assert ok[0]["background"] is True and ok[0]["output"] == [] and ok[0]["usage"] is None
    assert ok[4]["completed_at"] == EPOCH + 4 and ok[4]["output"][0]["type"] == "message"
    assert ok[4]["usage"]["total_tokens"] == 812 + 240
    assert seen["resp_fail"][3]["error"]["code"] == "server_error"
    assert seen["resp_short"][2]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert seen["resp_sync"][0]["background"] is False
    azure = seen["resp_azure"]
    assert [azure[t]["status"] for t in (2, 4.5, 5)] == ["cancelled", "cancelled", "completed"]
    assert azure[5]["metadata"] == {"team": "search"}


async def test_a_response_past_retention_answers_404():
    clock = ManualClock()
    async with client_for(create_app(SCENARIO, clock=clock)) as client:
        clock.advance(2.9)
        assert (await client.get("/responses/resp_gone")).json()["status"] == "completed"
        clock.advance(0.1)
        r = await client.get("/responses/resp_gone")
        assert r.status_code == 404
        assert r.json() == {
            "error": {
                "message": "Response with id 'resp_gone' not found.",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        }
        assert (await client.get("/responses/resp_nope")).status_code == 404


async def test_batch_request_counts_progress_and_timestamps_fill_in():
    seen = await walk(SCENARIO, TIMES)
    ok = seen["batch_ok"]
    counts = [ok[t]["request_counts"] for t in TIMES]
    assert counts[0] == {"total": 0, "completed": 0, "failed": 0}  # validating
    done = [c["completed"] for c in counts]
    assert done == sorted(done) and 0 < ok[3]["request_counts"]["completed"] < 190
    assert ok[5]["request_counts"] == {"total": 200, "completed": 190, "failed": 10}
    assert ok[1]["in_progress_at"] == EPOCH + 1 and ok[1]["finalizing_at"] is None
    last = ok[7]
    assert (last["finalizing_at"], last["completed_at"]) == (EPOCH + 5, EPOCH + 6)
    assert last["output_file_id"] and last["error_file_id"] and last["usage"] is not None
    assert last["expires_at"] == EPOCH + 86_400 and last["metadata"] == {"nightly": "yes"}
    bad = seen["batch_bad"][1]
    assert bad["failed_at"] == EPOCH + 1 and bad["errors"]["data"][0]["line"] == 1
    stop = seen["batch_stop"][7]
    assert stop["cancelling_at"] == EPOCH + 4 and stop["cancelled_at"] == EPOCH + 5
    assert 0 < stop["request_counts"]["completed"] < 100  # cut short, frozen
    assert seen["batch_late"][7]["expired_at"] == EPOCH + 6


async def test_fine_tuning_jobs_estimate_their_finish_while_running():
    seen = await walk(SCENARIO, TIMES)
    ok = seen["ftjob-ok"]
    assert ok[1]["estimated_finish"] is None and ok[3]["estimated_finish"] == EPOCH + 6
    assert ok[6]["fine_tuned_model"] and ok[6]["finished_at"] == EPOCH + 6
    assert ok[6]["trained_tokens"] and ok[6]["result_files"] and ok[3]["result_files"] == []
    assert seen["ftjob-stop"][3]["estimated_finish"] == EPOCH + 30  # scripted, and wrong
    assert seen["ftjob-bad"][1]["error"]["param"] == "training_file"


async def test_file_batch_counts_always_add_up():
    seen = await walk(SCENARIO, TIMES)
    for obj in (o for i, by_t in seen.items() if i.startswith("vsfb_") for o in by_t.values()):
        c = obj["file_counts"]
        assert c["in_progress"] + c["completed"] + c["failed"] + c["cancelled"] == c["total"]
    ok = seen["vsfb_ok"]
    assert ok[4]["file_counts"] | {"total": 0} == {
        "in_progress": 0,
        "completed": 10,
        "failed": 2,
        "cancelled": 0,
        "total": 0,
    }
    assert ok[0]["vector_store_id"] == "vs_docs" and ok[2]["file_counts"]["in_progress"] > 0
    assert seen["vsfb_stop"][3]["file_counts"]["cancelled"] > 0


async def test_a_file_batch_of_another_vector_store_is_404():
    async with client_for(create_app(SCENARIO, clock=ManualClock())) as client:
        r = await client.get("/vector_stores/vs_other/file_batches/vsfb_ok")
    assert r.status_code == 404 and errors(r.json(), "ErrorResponse") == []


def many() -> Scenario:
    return Scenario(
        threads=(),
        epoch=EPOCH,
        long_running=generate_long_running(seed=5, batches=230, fine_tuning_jobs=45, duration=20),
    )


@pytest.mark.parametrize(
    ("path", "schema", "has_ids"),
    [
        ("/batches", "ListBatchesResponse", True),
        ("/fine_tuning/jobs", "ListPaginatedFineTuningJobsResponse", False),
    ],
)
async def test_lists_page_newest_first_with_after_and_limit(path, schema, has_ids):
    scenario, clock = many(), ManualClock()
    clock.advance(6)
    lr = scenario.long_running
    specs = lr.batches if path == "/batches" else lr.fine_tuning_jobs
    # creation order, ties in definition order; newest first
    visible = sorted((s for s in specs if s.timeline[0][1] <= 6), key=lambda s: s.timeline[0][1])
    want = [s.id for s in reversed(visible)]
    got: list[str] = []
    async with client_for(create_app(scenario, clock=clock)) as client:
        params: dict[str, str | int] = {"limit": 7}
        while True:
            page = (await client.get(path, params=params)).json()
            assert errors(page, schema) == []
            ids = [o["id"] for o in page["data"]]
            assert len(ids) <= 7
            if has_ids:
                assert (page["first_id"], page["last_id"]) == (ids[0], ids[-1]) if ids else True
            got += ids
            if not page["has_more"]:
                break
            params["after"] = ids[-1]
        assert got == want and len(want) > 20
        default = (await client.get(path)).json()
        assert [o["id"] for o in default["data"]] == want[:20] and default["has_more"]
        empty = (await client.get(path, params={"after": want[-1]})).json()
        assert empty["data"] == [] and empty["has_more"] is False
        assert errors(empty, schema) == []


@pytest.mark.parametrize("limit", ["0", "101", "ten"])
async def test_list_limit_is_checked(limit):
    async with client_for(create_app(SCENARIO, clock=ManualClock())) as client:
        r = await client.get("/batches", params={"limit": limit})
    assert r.status_code == 400 and r.json()["error"]["param"] == "limit"
    assert errors(r.json(), "ErrorResponse") == []


async def test_no_beta_header_but_the_key_and_query_are_checked():
    app = create_app(
        SCENARIO, clock=ManualClock(), api_key="sk-yes-000", required_query={"api-version": "v1"}
    )
    async with client_for(app) as client:
        r = await client.get("/batches/batch_ok", headers={"Authorization": "Bearer sk-no"})
        assert r.status_code == 401 and errors(r.json(), "ErrorResponse") == []
        good = {"Authorization": "Bearer sk-yes-000"}
        r = await client.get("/batches/batch_ok", headers=good)
        assert r.status_code == 400 and r.json()["error"]["param"] == "api-version"
        r = await client.get("/batches/batch_ok?api-version=v1", headers=good)
        assert r.status_code == 200


async def test_faults_match_the_new_routes():
    app = create_app(SCENARIO, clock=ManualClock())
    async with client_for(app) as client:
        faults = [
            {"kind": "status", "status": 429, "match": "batch", "retry_after": 1},
            {"kind": "status", "status": 503, "match": "fine_tuning_jobs"},
            {"kind": "mangle", "match": "response"},
            {"kind": "status", "status": 500},  # any route
        ]
        assert (await client.post("http://sim/_sim/faults", json=faults)).status_code == 204
        r = await client.get("/batches/batch_ok")
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        assert (await client.get("/batches/batch_ok")).status_code == 500  # the catch-all
        assert (await client.get("/batches/batch_ok")).status_code == 200
        assert (await client.get("/fine_tuning/jobs")).status_code == 503
        mangled = (await client.get("/responses/resp_ok")).json()
        assert "status" not in mangled and "x_future_field" in mangled
        stats = (await client.get("http://sim/_sim/stats")).json()
    assert stats["by_route"]["batch"] == 3 and stats["by_route"]["response"] == 1
    assert stats["faults_injected"] == {"status": 3, "mangle": 1}
    bad = [{"kind": "status", "match": "ftjobs"}]
    async with client_for(app) as client:
        r = await client.post("http://sim/_sim/faults", json=bad)
    assert r.status_code == 422 and "fine_tuning_job" in r.json()["error"]


def test_transitions_include_the_new_kinds_in_time_order():
    items = World(SCENARIO, EPOCH).transitions_until(100)
    assert [x["at"] for x in items] == sorted(x["at"] for x in items)
    azure = [(x["kind"], x["status"]) for x in items if x["id"] == "resp_azure"]
    assert azure == [
        ("response", "queued"),
        ("response", "in_progress"),
        ("response", "cancelled"),
        ("response", "completed"),
    ]
    kinds = {x["kind"] for x in items}
    assert kinds == {"response", "batch", "fine_tuning.job", "vector_store.files_batch"}
    assert ("batch_stop", "in_progress", 2.0) in {(x["id"], x["status"], x["at"]) for x in items}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"responses": {}}, "responses"),
        ({"responses": [{"id": "resp/1", "timeline": [["queued", 0]]}]}, "responses[0].id"),
        ({"batches": [{"id": "batch_1"}]}, "batches[0].timeline"),
        (
            {
                "batches": [
                    {"id": "b", "timeline": [["x", 0]], "request_counts": {"total": 1, "failed": 2}}
                ]
            },
            "batches[0].request_counts",
        ),
        ({"responses": [{"id": "r", "timeline": [["x", 0]], "gone_at": -1}]}, "gone_at"),
        ({"responses": [{"id": "r", "timeline": [["x", 0]], "background": 1}]}, "background"),
        ({"fine_tuning_jobs": [{"id": "j", "timeline": [["x", 0]], "epochs": 3}]}, "epochs"),
        ({"file_batches": [{"id": "f", "timeline": [["x", 0]], "vector_store_id": ""}]}, "vector"),
        ({"file_batches": [{"id": "f", "timeline": [["x", 2], ["y", 1]]}]}, "timeline[1]"),
        ({"batches": [{"id": "b", "timeline": [["x", 0]]}] * 2}, "batches[1].id"),
        ({"batches": [], "fine_tuning_job": []}, "scenario.fine_tuning_job"),
    ],
)
def test_bad_long_running_objects_name_the_field(raw, field):
    with pytest.raises(ScenarioError, match=re.escape(field)):
        parse_scenario(raw)


def test_a_scenario_of_long_running_objects_only():
    scenario = parse_scenario({"batches": [{"id": "batch_1", "timeline": [["validating", 0]]}]})
    assert scenario.threads == () and scenario.long_running.batches[0].id == "batch_1"


def test_ids_are_valid_and_their_prefix_names_the_kind():
    from watcher.core.ids import is_valid_id

    for object_id, kind in [
        ("resp_677efb5139a88190b512bc3fef8e535d", "response"),
        ("batch_abc123", "batch"),
        ("ftjob-abc123", "fine_tuning_job"),
        ("vsfb_abc123", "file_batch"),
    ]:
        assert is_valid_id(object_id)
        found = kind_of_id(object_id)
        assert found is not None and found.name == kind
    assert kind_of_id("run_abc") is None


async def test_the_demo_shows_a_background_response_and_a_batch_that_end():
    demo = default_scenario()
    lr = demo.long_running
    assert len(lr.responses) == 1 and lr.responses[0].background and len(lr.batches) == 1
    end = max(x for s in (*lr.responses, *lr.batches) for _, x in s.timeline)
    run_end = max(x for th in demo.threads for r in th.runs for _, x in r.timeline)
    assert end <= run_end
    seen = await walk(demo, [0, 1, 3, 6, 9, 12, 16, 20])
    assert statuses(seen, "resp_") >= {"queued", "in_progress", "completed"}
    assert statuses(seen, "batch_") >= {"validating", "in_progress", "finalizing", "completed"}


async def test_generated_objects_validate_and_are_deterministic():
    assert generate_long_running(seed=2, batches=5) == generate_long_running(seed=2, batches=5)
    scenario = Scenario(
        threads=(),
        long_running=generate_long_running(seed=9, batches=25, fine_tuning_jobs=25, duration=20),
    )
    seen = await walk(scenario, [0, 5, 10, 20])
    assert {"in_progress", "completed"} <= statuses(seen, "batch_")
    assert {"running", "succeeded"} <= statuses(seen, "ftjob-")
