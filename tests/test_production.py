"""The daemon in production: HTTP endpoint, metrics, control API, SIGHUP reload — as a process."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.proc import Daemon, event_pairs

TOKEN = "ctl-token-SECRET-1234567890"
KEY = "sk-prod-SECRET-abcdef0123"

SCENARIO = {
    "threads": [
        {
            "id": "thread_a",
            "runs": [
                {
                    "id": "run_1",
                    "timeline": [["queued", 0], ["in_progress", 1], ["completed", 3]],
                    "steps": [
                        {
                            "id": "step_1",
                            "type": "message_creation",
                            "timeline": [["in_progress", 1], ["completed", 2]],
                        }
                    ],
                },
                {
                    "id": "run_2",
                    "timeline": [["queued", 0], ["in_progress", 1], ["completed", 3]],
                    "steps": [],
                },
            ],
        },
    ]
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(tmp_path: Path, base_url: str, watches, *, port: int, token: bool = True) -> Path:
    text = f"""
[api]
base_url = "{base_url}"
timeout = 2.0
[poll]
interval = 0.05
max_interval = 0.2
max_requests_per_second = 500
[retry]
attempts = 2
initial_delay = 0.05
max_delay = 0.1
auth_backoff = 0.2
[state]
path = "{tmp_path / "state.db"}"
[http]
listen = "127.0.0.1:{port}"
"""
    if token:
        text += f'token = "{TOKEN}"\n'
    for thread_id, run_id in watches:
        text += f'[[watch]]\nthread_id = "{thread_id}"\n'
        if run_id:
            text += f'run_id = "{run_id}"\n'
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def start(tmp_path, sim_handle, watches, **kw):
    port = free_port()
    cfg = config(tmp_path, sim_handle.base_url, watches, port=port, **kw)
    d = Daemon("run", "--config", str(cfg), OPENAI_API_KEY=KEY)
    d.wait_log("http endpoint listening")
    return d, f"http://127.0.0.1:{port}", cfg


def auth() -> dict[str, str]:
    return {"authorization": f"Bearer {TOKEN}"}


def test_health_readiness_and_metrics(sim, tmp_path):
    s = sim(SCENARIO)
    d, url, _ = start(tmp_path, s, [("thread_a", "run_1")])
    try:
        assert httpx.get(f"{url}/livez").status_code == 200
        assert httpx.get(f"{url}/healthz").status_code == 200
        assert httpx.get(f"{url}/readyz").json() == {"ready": True}
        s.advance(5)
        d.wait_for(lambda: ("run_1", "completed") in event_pairs(d.events))
        text = httpx.get(f"{url}/metrics").text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        events = {
            tuple(sorted(x.labels.items())): x.value
            for x in families["runstep_watcher_events"].samples
            if x.name.endswith("_total")
        }
        assert events[(("type", "thread.run.completed"),)] == 1
        codes = {
            x.labels["code"]
            for x in families["runstep_watcher_api_requests"].samples
            if x.name.endswith("_total")
        }
        assert "200" in codes
        assert "runstep_watcher_api_request_duration_seconds" in families
        assert "runstep_watcher_poll_lag_seconds" in families
        assert "runstep_watcher_watched_runs" in families
        assert families["runstep_watcher_api_consecutive_failures"].samples[0].value == 0
        assert KEY not in text and TOKEN not in text
    finally:
        d.kill()


def test_readiness_stays_up_when_the_api_refuses_the_key(sim, tmp_path):
    s = sim(SCENARIO, api_key="sk-another-key-000000000")
    d, url, _ = start(tmp_path, s, [("thread_a", "run_1")])
    try:
        d.wait_log("API key was refused")
        assert httpx.get(f"{url}/readyz").status_code == 200
        assert httpx.get(f"{url}/livez").status_code == 200
        status = httpx.get(f"{url}/status", headers=auth()).json()
        assert status["upstream"]["auth_refused"] is True
        assert status["upstream"]["consecutive_failures"] >= 1
        text = httpx.get(f"{url}/metrics").text
        assert "runstep_watcher_api_auth_refused 1.0" in text
        assert KEY not in d.output()
    finally:
        d.kill()


def test_control_api_add_list_delete_and_auth(sim, tmp_path):
    s = sim(SCENARIO)
    d, url, _ = start(tmp_path, s, [])
    try:
        assert httpx.get(f"{url}/v1/watches").status_code == 401
        assert httpx.post(f"{url}/v1/watches", json={"thread_id": "thread_a"}).status_code == 401
        wrong = {"authorization": "Bearer nope"}
        assert httpx.get(f"{url}/v1/watches", headers=wrong).status_code == 401
        r = httpx.post(
            f"{url}/v1/watches", json={"thread_id": "thread_a", "run_id": "run_2"}, headers=auth()
        )
        assert r.status_code == 201
        again = httpx.post(
            f"{url}/v1/watches", json={"thread_id": "thread_a", "run_id": "run_2"}, headers=auth()
        )
        assert again.status_code == 200
        d.wait_for(lambda: ("run_2", "queued") in event_pairs(d.events))
        listed = httpx.get(f"{url}/v1/watches", headers=auth()).json()["watches"]
        assert [(w["thread_id"], w["run_id"]) for w in listed] == [("thread_a", "run_2")]
        for bad in (
            {"thread_id": "../x"},
            {"thread_id": "t", "run_id": "r?a=1"},
            {"run_id": "r"},
            {"thread_id": "t", "extra": 1},
        ):
            r = httpx.post(f"{url}/v1/watches", json=bad, headers=auth())
            assert r.status_code == 422
            assert r.json()["error"]["field"] in ("thread_id", "run_id", "extra")
        assert httpx.delete(f"{url}/v1/watches/thread_a/run_2", headers=auth()).status_code == 204
        assert httpx.delete(f"{url}/v1/watches/thread_a/run_2", headers=auth()).status_code == 404
        assert httpx.get(f"{url}/v1/watches", headers=auth()).json()["watches"] == []
    finally:
        d.kill()


def test_watches_added_by_api_persist_across_restart(sim, tmp_path):
    s = sim(SCENARIO)
    d, url, cfg = start(tmp_path, s, [])
    try:
        r = httpx.post(
            f"{url}/v1/watches", json={"thread_id": "thread_a", "run_id": "run_1"}, headers=auth()
        )
        assert r.status_code == 201
        d.wait_for(lambda: ("run_1", "queued") in event_pairs(d.events))
    finally:
        assert d.stop() == 0
    d2 = Daemon("run", "--config", str(cfg), OPENAI_API_KEY=KEY)
    try:
        d2.wait_log("http endpoint listening")
        s.advance(5)
        d2.wait_for(lambda: ("run_1", "completed") in event_pairs(d2.events))
        assert ("run_1", "queued") not in event_pairs(d2.events)
    finally:
        d2.kill()


def test_token_is_mandatory_beyond_loopback(tmp_path):
    from tests.cli import run_cli

    cfg = tmp_path / "c.toml"
    cfg.write_text('[http]\nlisten = "0.0.0.0:9464"\n')
    result = run_cli("check-config", "--config", str(cfg), OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    assert result.returncode == 78
    assert "http.token" in result.stderr


def test_sighup_reload_adds_and_removes_watches_and_refuses_bad_config(sim, tmp_path):
    s = sim(SCENARIO)
    d, url, cfg = start(tmp_path, s, [("thread_a", "run_1")])
    try:
        d.wait_for(lambda: ("run_1", "queued") in event_pairs(d.events))
        text = cfg.read_text().replace('run_id = "run_1"', 'run_id = "run_2"')
        cfg.write_text(text)
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log("config reloaded")
        d.wait_for(lambda: ("run_2", "queued") in event_pairs(d.events))
        listed = httpx.get(f"{url}/v1/watches", headers=auth()).json()["watches"]
        assert [(w["thread_id"], w["run_id"]) for w in listed] == [("thread_a", "run_2")]
        # a bad new config is refused; the old one stays in force
        cfg.write_text(text + "\n[poll]\nbogus = 1\n")
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log("reload refused")
        s.advance(5)
        d.wait_for(lambda: ("run_2", "completed") in event_pairs(d.events))
        assert d.proc.poll() is None
        assert not any(obj == "run_1" and st == "completed" for obj, st in event_pairs(d.events))
    finally:
        d.kill()
