"""The config file is the truth at start, and a reload applies what it says — as a process."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from tests import test_production as prod
from tests.proc import Daemon, event_pairs

INCLUDE = "step_details.tool_calls[*].file_search.results[*].content"

SCENARIO = {
    "threads": [
        {
            "id": "thread_a",
            "runs": [
                {
                    "id": "run_1",
                    "timeline": [["queued", 0], ["in_progress", 1], ["completed", 3]],
                },
                {
                    "id": "run_2",
                    "timeline": [["queued", 0], ["in_progress", 1], ["completed", 3]],
                },
                {
                    "id": "run_3",
                    "timeline": [["queued", 0], ["in_progress", 1], ["completed", 3]],
                    "steps": [
                        {
                            "id": "step_fs",
                            "type": "tool_calls",
                            "tools": ["file_search"],
                            "timeline": [["in_progress", 1], ["completed", 2]],
                        }
                    ],
                },
            ],
        }
    ]
}


def write_config(
    path: Path, base_url: str, port: int, watches: list[str], extra_poll: str = ""
) -> None:
    text = prod.config(path.parent, base_url, [], port=port).read_text()
    text = text.replace("[poll]\n", f"[poll]\nmax_concurrency = 2\n{extra_poll}")
    for run_id in watches:
        text += f'[[watch]]\nthread_id = "thread_a"\nrun_id = "{run_id}"\n'
    path.write_text(text)


def settle(s, d) -> None:
    """Wait until a poll that began after the reload has sent its request: the poll in
    flight during the reload (with the old settings) is over (one run is watched)."""
    polled = s.stats()["by_route"]["run"]
    d.wait_for(lambda: s.stats()["by_route"]["run"] >= polled + 2, what="a poll after the reload")


def test_a_watch_removed_from_the_file_while_stopped_is_stopped_at_the_next_start(sim, tmp_path):
    s = sim(SCENARIO)
    port = prod.free_port()
    cfg = tmp_path / "config.toml"
    url = f"http://127.0.0.1:{port}"
    write_config(cfg, s.base_url, port, ["run_1"])
    d = Daemon("run", "--config", str(cfg), OPENAI_API_KEY=prod.KEY)
    try:
        d.wait_log("http endpoint listening")
        body = {"thread_id": "thread_a", "run_id": "run_2"}
        assert httpx.post(f"{url}/v1/watches", json=body, headers=prod.auth()).status_code == 201
        d.wait_for(lambda: {("run_1", "queued"), ("run_2", "queued")} <= set(event_pairs(d.events)))
    finally:
        assert d.stop() == 0
    write_config(cfg, s.base_url, port, [])  # run_1 is no longer in the file
    d2 = Daemon("run", "--config", str(cfg), OPENAI_API_KEY=prod.KEY)
    try:
        d2.wait_log("http endpoint listening")
        listed = httpx.get(f"{url}/v1/watches", headers=prod.auth()).json()["watches"]
        assert [(w["run_id"], w["source"]) for w in listed] == [("run_2", "api")]
        s.advance(5)
        d2.wait_for(lambda: ("run_2", "completed") in event_pairs(d2.events))
        assert not any(obj == "run_1" for obj, _ in event_pairs(d2.events))
    finally:
        assert d2.stop() == 0


def test_sighup_applies_every_poll_key_and_names_what_needs_a_restart(sim, tmp_path):
    s = sim(SCENARIO)
    port = prod.free_port()
    cfg = tmp_path / "config.toml"
    url = f"http://127.0.0.1:{port}"
    write_config(cfg, s.base_url, port, ["run_3"])
    d = Daemon("run", "--config", str(cfg), OPENAI_API_KEY=prod.KEY)
    try:
        d.wait_log("http endpoint listening")
        d.wait_for(lambda: ("run_3", "queued") in event_pairs(d.events))
        write_config(
            cfg,
            s.base_url,
            port,
            ["run_3"],
            extra_poll=f'include = ["{INCLUDE}"]\nidle_after = 7.0\n',
        )
        text = cfg.read_text()
        text = text.replace("max_concurrency = 2", "max_concurrency = 5")
        text = text.replace("max_requests_per_second = 500", "max_requests_per_second = 400")
        text = text.replace("timeout = 2.0", "timeout = 3.0")  # [api]: needs a restart
        text = text.replace("max_delay = 0.1", "max_delay = 0.2")  # [retry]: applied
        cfg.write_text(text)
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log("config reloaded")
        restart = [line for line in d.stderr if "next restart" in line]
        assert len(restart) == 1 and "api.timeout" in restart[0]
        assert "poll" not in restart[0] and "retry" not in restart[0]
        [reloaded] = [line for line in d.stderr if "config reloaded" in line]
        for key in ("poll.include", "poll.max_concurrency", "poll.max_requests_per_second"):
            assert key in reloaded
        status = httpx.get(f"{url}/status", headers=prod.auth()).json()
        assert status["poll"]["max_concurrency"] == 5
        assert status["poll"]["max_requests_per_second"] == 400
        assert status["poll"]["idle_after"] == 7.0
        # the new include applies to the polls of a watch already running
        settle(s, d)
        s.advance(2.5)
        d.wait_for(lambda: ("step_fs", "completed") in event_pairs(d.events))
        [step] = [e for e in d.events if e["type"] == "thread.run.step.completed"]
        [call] = step["data"]["step_details"]["tool_calls"]
        assert call["file_search"]["results"][0]["content"], "include not applied"
    finally:
        assert d.stop() == 0


def test_sighup_applies_a_changed_include_of_a_watch(sim, tmp_path):
    s = sim(SCENARIO)
    port = prod.free_port()
    cfg = tmp_path / "config.toml"
    write_config(cfg, s.base_url, port, ["run_3"])
    d = Daemon("run", "--config", str(cfg), OPENAI_API_KEY=prod.KEY)
    try:
        d.wait_log("http endpoint listening")
        d.wait_for(lambda: ("run_3", "queued") in event_pairs(d.events))
        cfg.write_text(cfg.read_text() + f'include = ["{INCLUDE}"]\n')  # on the [[watch]]
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log("config reloaded")
        settle(s, d)
        s.advance(2.5)
        d.wait_for(lambda: ("step_fs", "completed") in event_pairs(d.events))
        [step] = [e for e in d.events if e["type"] == "thread.run.step.completed"]
        [call] = step["data"]["step_details"]["tool_calls"]
        assert call["file_search"]["results"][0]["content"], "include not applied"
    finally:
        assert d.stop() == 0
