"""`runstep-watcher simulate` as a process: prints its base URL, serves, stops on SIGTERM."""

from __future__ import annotations

import json
import signal

import httpx

from tests.cli import popen_cli, run_cli

HEADERS = {"OpenAI-Beta": "assistants=v2"}


def test_simulate_serves_the_default_scenario_and_stops():
    proc = popen_cli("simulate", "--port", "0")
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        scenario = httpx.get(url.removesuffix("/v1") + "/_sim/scenario").json()
        thread = scenario["threads"][0]
        r = httpx.get(f"{url}/threads/{thread['id']}/runs/{thread['runs'][0]}", headers=HEADERS)
        assert r.status_code == 200 and r.json()["object"] == "thread.run"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_simulate_with_a_scenario_file_and_a_bad_one(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"threads": [{"id": "../etc", "runs": []}]}))
    result = run_cli("simulate", "--scenario", str(bad))
    assert result.returncode == 78
    assert "threads[0].id" in result.stderr and "Traceback" not in result.stderr
