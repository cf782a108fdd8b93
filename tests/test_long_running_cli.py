"""Background responses, batches, fine-tuning jobs and file batches end to end: the real CLI
as a process against the simulator (manual clock), configured, discovered, `watch`."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.cli import run_cli
from tests.proc import Daemon
from tests.test_production import free_port

RAW = {
    "responses": [
        {"id": "resp_ok", "timeline": [["queued", 0], ["in_progress", 1], ["completed", 4]]},
        {"id": "resp_fail", "timeline": [["queued", 0], ["failed", 2]]},
        {"id": "resp_flip", "timeline": [["in_progress", 0], ["cancelled", 2], ["completed", 3]]},
        {"id": "resp_gone", "timeline": [["queued", 0], ["in_progress", 1]], "gone_at": 3},
    ],
    "batches": [
        {"id": "batch_old", "timeline": [["validating", 0], ["failed", 1]]},
        {
            "id": "batch_busy",
            "timeline": [
                ["validating", 0],
                ["in_progress", 1],
                ["finalizing", 6],
                ["completed", 7],
            ],
        },
        {"id": "batch_new", "timeline": [["validating", 20], ["completed", 25]]},
    ],
    "fine_tuning_jobs": [
        {"id": "ftjob-ok", "timeline": [["validating_files", 0], ["running", 2], ["succeeded", 6]]}
    ],
    "file_batches": [
        {
            "id": "vsfb_ok",
            "vector_store_id": "vs_docs",
            "timeline": [["in_progress", 0], ["completed", 4]],
        }
    ],
}


def config(tmp_path: Path, base_url: str, watches: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[api]\nbase_url = "{base_url}"\ntimeout = 2.0\n'
        "[poll]\ninterval = 0.05\nmax_interval = 0.2\nidle_after = 100\n"
        f'[state]\npath = "{tmp_path / "state.db"}"\n' + watches
    )
    return path


def pairs(events: list[dict]) -> list[tuple[str, str]]:
    return [(e["data"]["id"], e["type"]) for e in events]


@pytest.mark.parametrize(
    ("ids", "code", "last"),
    [
        (["resp_ok"], 0, "response.completed"),
        (["resp_fail"], 1, "response.failed"),
        (["batch_busy"], 0, "batch.completed"),
        (["ftjob-ok"], 0, "fine_tuning.job.succeeded"),
        (["vs_docs", "vsfb_ok"], 0, "vector_store.files_batch.completed"),
        (["vsfb_ok", "--vector-store", "vs_docs"], 0, "vector_store.files_batch.completed"),
        (["odd_1", "--kind", "response"], 4, None),
        (["resp_gone"], 4, "response.in_progress"),
    ],
)
def test_watch_exit_codes(sim, tmp_path, ids, code, last):
    s = sim(RAW)
    cfg = config(tmp_path, s.base_url, "")
    d = Daemon("watch", *ids, "--exit-status", "--json", "--config", str(cfg))
    try:
        if last is not None:
            d.wait_for(lambda: len(d.events) >= 1, 20)
        s.advance(1.5)
        if ids == ["resp_gone"]:
            d.wait_for(lambda: ("resp_gone", "response.in_progress") in pairs(d.events), 20)
        s.advance(10)
        assert d.wait_exit(30) == code
        if last is not None:
            assert pairs(d.events)[-1][1] == last
            assert d.events[-1]["data"]["object"] == last.rsplit(".", 1)[0]
    finally:
        d.kill()
    if code == 4:  # the object named, never "no Assistants API" (that is the runs' 404)
        stderr = "".join(d.stderr)
        assert f"response {ids[0]} not found" in stderr and "Assistants" not in stderr


def test_unknown_prefix_is_a_usage_error():
    result = run_cli("watch", "what_1", OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    assert result.returncode == 2 and "--kind" in result.stderr


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ('response_id = "resp_1"\nbatch_id = "batch_1"', "batch_id"),
        ('file_batch_id = "vsfb_1"', "vector_store_id"),
        ('discover = "responses"', "discover"),
        ('batch_id = "batch_1"\nrun_id = "run_1"', "run_id"),
        ('response_id = "bad id"', "response_id"),
    ],
)
def test_bad_watch_entries_exit_78_naming_the_field(tmp_path, entry, field):
    cfg = config(tmp_path, "http://127.0.0.1:9/v1", f"[[watch]]\n{entry}\n")
    result = run_cli("check-config", "--config", str(cfg))
    assert result.returncode == 78 and f"watch[0].{field}" in result.stderr


def test_configured_and_discovered_once_each_and_no_repeats_after_restart(sim, tmp_path):
    # clock 0 ten seconds ago: batch_old's created_at (whole seconds) falls before the
    # watch began, never in the same second as the daemon's start
    s = sim({**RAW, "epoch": int(time.time()) - 10})
    s.advance(5)  # batch_old failed before the watch began; batch_busy is still active
    cfg = config(
        tmp_path,
        s.base_url,
        '[[watch]]\ndiscover = "batches"\n[[watch]]\nbatch_id = "batch_busy"\n'
        '[[watch]]\nresponse_id = "resp_ok"\n[[watch]]\ndiscover = "fine_tuning.jobs"\n',
    )
    d = Daemon("run", "--config", str(cfg))
    try:
        d.wait_for(lambda: ("batch_busy", "batch.in_progress") in pairs(d.events), 20)
        d.wait_for(lambda: ("ftjob-ok", "fine_tuning.job.running") in pairs(d.events), 20)
        d.wait_for(lambda: ("resp_ok", "response.completed") in pairs(d.events), 20)
        assert d.stop() == 0
    finally:
        d.kill()
    first = pairs(d.events)
    s.advance(1.5)  # batch_busy finalizes while the daemon is stopped
    d2 = Daemon("run", "--config", str(cfg))
    try:
        d2.wait_for(lambda: ("batch_busy", "batch.finalizing") in pairs(d2.events), 20)
        s.advance(20)  # batch_busy completes, batch_new appears and completes
        d2.wait_for(lambda: ("batch_new", "batch.completed") in pairs(d2.events), 20)
        d2.wait_for(lambda: ("batch_busy", "batch.completed") in pairs(d2.events), 20)
        d2.wait_for(lambda: ("ftjob-ok", "fine_tuning.job.succeeded") in pairs(d2.events), 20)
        assert d2.stop() == 0
    finally:
        d2.kill()
    every = first + pairs(d2.events)
    assert len(every) == len(set(every))  # one event per (object, status), across restarts
    assert not any(i == "batch_old" for i, _ in every)  # finished before the watch began
    assert ("batch_busy", "batch.finalizing") in every
    assert not any(i.startswith("resp_") for i, _ in pairs(d2.events))  # ended before


def test_control_api_adds_lists_and_deletes_every_kind(sim, tmp_path):
    s = sim(RAW)
    port = free_port()
    cfg = config(tmp_path, s.base_url, f'[http]\nlisten = "127.0.0.1:{port}"\n')
    d = Daemon("run", "--config", str(cfg))
    url = f"http://127.0.0.1:{port}/v1/watches"
    try:
        d.wait_log("http endpoint listening")
        bad = [
            ({"response_id": "resp_ok", "batch_id": "batch_busy"}, "batch_id"),
            ({"file_batch_id": "vsfb_ok"}, "vector_store_id"),
            ({"discover": "responses"}, "discover"),
            ({"response_id": "no good"}, "response_id"),
            ({"job_id": "x"}, "job_id"),
        ]
        for body, field in bad:
            r = httpx.post(url, json=body)
            assert r.status_code == 422 and r.json()["error"]["field"] == field, r.text
        for body in (
            {"response_id": "resp_ok"},
            {"fine_tuning_job_id": "ftjob-ok"},
            {"vector_store_id": "vs_docs", "file_batch_id": "vsfb_ok"},
            {"discover": "batches"},
        ):
            r = httpx.post(url, json=body)
            assert r.status_code == 201 and r.json()["created"], r.text
        d.wait_for(lambda: ("batch_busy", "batch.validating") in pairs(d.events), 20)
        d.wait_for(lambda: ("vsfb_ok", "vector_store.files_batch.in_progress") in pairs(d.events))
        listed = httpx.get(url).json()["watches"]
        kinds = {(w["kind"], w.get("id") or w.get("discover")) for w in listed}
        assert {("response", "resp_ok"), ("file_batch", "vsfb_ok"), ("batch", "batches")} <= kinds
        assert httpx.delete(f"{url}/response/resp_ok").status_code == 204
        assert httpx.delete(f"{url}/file_batch/vs_docs/vsfb_ok").status_code == 204
        assert httpx.delete(f"{url}/discover/batches").status_code == 204
        assert httpx.delete(f"{url}/response/resp_ok").status_code == 404
        left = {w.get("id") for w in httpx.get(url).json()["watches"]}
        assert left == {"ftjob-ok"}
        assert d.stop() == 0
    finally:
        d.kill()


def test_sighup_adds_and_removes_object_watches(sim, tmp_path):
    s = sim(RAW)
    cfg = config(tmp_path, s.base_url, '[[watch]]\nfine_tuning_job_id = "ftjob-ok"\n')
    d = Daemon("run", "--config", str(cfg))
    try:
        d.wait_for(lambda: ("ftjob-ok", "fine_tuning.job.validating_files") in pairs(d.events))
        config(tmp_path, s.base_url, '[[watch]]\nresponse_id = "resp_ok"\n')
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log("config reloaded")
        d.wait_for(lambda: ("resp_ok", "response.queued") in pairs(d.events))
        s.advance(10)
        d.wait_for(lambda: ("resp_ok", "response.completed") in pairs(d.events))
        assert d.stop() == 0
    finally:
        d.kill()
    assert [i for i, _ in pairs(d.events)].count("ftjob-ok") == 1  # removed before it moved
    assert "watch removed" in "".join(d.stderr)
