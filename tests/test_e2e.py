"""End to end: the real `runstep-watcher` process against the simulator on 127.0.0.1."""

from __future__ import annotations

import itertools
import resource
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from tests.proc import Daemon, event_pairs, expected_pairs
from tests.proxy import Proxy

KEY = "sk-e2e-SECRET-9f8e7d6c5b4a"
TOOLS = {"type": "tool_calls", "tools": ["code_interpreter"]}


def step(sid, timeline, **extra):
    return {"id": sid, "type": "message_creation", "timeline": timeline, **extra}


SCENARIO = {
    "epoch": 1732450000,
    "threads": [
        {
            "id": "thread_a",
            "runs": [
                {
                    "id": "run_ok",
                    "timeline": [
                        ["queued", 0],
                        ["in_progress", 1],
                        ["requires_action", 2],
                        ["in_progress", 3],
                        ["completed", 5],
                    ],
                    "steps": [
                        step("step_ok1", [["in_progress", 1], ["completed", 2]], **TOOLS),
                        step("step_ok2", [["in_progress", 3], ["completed", 4.5]]),
                    ],
                },
                {
                    "id": "run_fail",
                    "timeline": [["queued", 0], ["in_progress", 1], ["failed", 4]],
                    "steps": [step("step_f1", [["in_progress", 1], ["failed", 4]], **TOOLS)],
                },
            ],
        },
        {
            "id": "thread_b",
            "runs": [
                {
                    "id": "run_cancel",
                    "timeline": [
                        ["queued", 0],
                        ["in_progress", 1],
                        ["cancelling", 2],
                        ["cancelled", 3],
                    ],
                    "steps": [step("step_c1", [["in_progress", 1], ["cancelled", 3]])],
                },
                {
                    "id": "run_exp",
                    "timeline": [["queued", 0], ["expired", 4]],
                    "steps": [],
                },
                {
                    "id": "run_inc",
                    "timeline": [["queued", 0], ["in_progress", 1], ["incomplete", 4]],
                    "steps": [step("step_i1", [["in_progress", 1], ["expired", 4]])],
                },
            ],
        },
    ],
}
ALL_RUNS = [
    ("thread_a", "run_ok"),
    ("thread_a", "run_fail"),
    ("thread_b", "run_cancel"),
    ("thread_b", "run_exp"),
    ("thread_b", "run_inc"),
]


def config(tmp_path: Path, base_url: str, watches, extra: str = "") -> Path:
    lines = [
        "[api]",
        f'base_url = "{base_url}"',
        "timeout = 2.0",
        "[poll]",
        "interval = 0.05",
        "max_interval = 0.2",
        "idle_after = 100",
        "max_requests_per_second = 500",
        "[retry]",
        "attempts = 6",
        "initial_delay = 0.05",
        "max_delay = 0.5",
        "[state]",
        f'path = "{tmp_path / "state.db"}"',
        extra,
    ]
    for thread_id, run_id in watches:
        lines += ["[[watch]]", f'thread_id = "{thread_id}"']
        if run_id:
            lines.append(f'run_id = "{run_id}"')
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


class Expected:
    """What the daemon should have reported: every object's status at each pause of the clock.

    A status that began and ended between two pauses is never observable by polling.
    """

    def __init__(self) -> None:
        self.pairs: set[tuple[str, str]] = set()

    def snapshot(self, sim) -> set[tuple[str, str]]:
        current: dict[str, str] = {}
        for t in sim.transitions():
            current[t["id"]] = t["status"]
        self.pairs |= set(current.items())
        return self.pairs


def caught_up(daemon: Daemon, sim, expected: Expected | None = None) -> set[tuple[str, str]]:
    """Wait until the daemon has reported every status the simulator shows now."""
    want = (expected or Expected()).snapshot(sim)
    daemon.wait_for(lambda: want <= set(event_pairs(daemon.events)), 20, f"{len(want)} transitions")
    return want


def stdout_pending(path: Path) -> int:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(
            db.execute("SELECT COUNT(*) FROM deliveries WHERE sink = 'stdout'").fetchone()[0]
        )
    finally:
        db.close()


def check_events(events, expected_pairs_list):
    pairs = event_pairs(events)
    assert len(pairs) == len(set(pairs)), "an (object, status) was reported twice"
    assert set(pairs) == set(expected_pairs_list)
    for ev in events:
        assert ev["object"] == "event"
        assert ev["type"] == f"{ev['data']['object']}.{ev['data']['status']}"
        assert ev["id"].startswith("evt_")


def test_every_status_of_runs_and_steps(sim, tmp_path):
    s = sim(SCENARIO, api_key=KEY)
    cfg = config(tmp_path, s.base_url, ALL_RUNS)
    d = Daemon("run", "--config", str(cfg), OPENAI_API_KEY=KEY)
    try:
        exp = Expected()
        for _ in range(14):  # clock 0 → 7 in steps of 0.5: every status is observable
            caught_up(d, s, exp)
            s.advance(0.5)
        caught_up(d, s, exp)
        events = list(d.events)
        assert exp.pairs == set(expected_pairs(s.transitions()))
        check_events(events, exp.pairs)
        # first sight carries previous_status null; later ones the status before
        by_obj: dict[str, list] = {}
        for ev in events:
            by_obj.setdefault(ev["data"]["id"], []).append(ev)
        for evs in by_obj.values():
            assert evs[0]["previous_status"] is None
            for a, b in itertools.pairwise(evs):
                assert b["previous_status"] == a["data"]["status"]
        types = {ev["type"] for ev in events}
        assert {
            "thread.run.queued",
            "thread.run.requires_action",
            "thread.run.cancelling",
            "thread.run.cancelled",
            "thread.run.failed",
            "thread.run.completed",
            "thread.run.expired",
            "thread.run.incomplete",
            "thread.run.step.in_progress",
            "thread.run.step.completed",
            "thread.run.step.failed",
            "thread.run.step.cancelled",
            "thread.run.step.expired",
        } <= types
        # a terminal run's steps go out before the run's own terminal event
        order = [ev["data"]["id"] + ":" + ev["data"]["status"] for ev in events]
        assert order.index("step_ok2:completed") < order.index("run_ok:completed")
        # once every run has ended, no more requests are made
        d.wait_log("run finished; watch ends")
        d.wait_for(lambda: sum("run finished" in line for line in d.stderr) == 5, 10)
        before = s.stats()["requests"]
        s.advance(1)
        assert d.stop() == 0
        assert s.stats()["requests"] == before
        assert KEY not in d.output()
    finally:
        d.kill()


def test_many_steps_page_then_one_request_per_poll(sim, tmp_path):
    steps = [step(f"step_{i:03d}", [["in_progress", 0], ["completed", 1]]) for i in range(240)]
    steps += [
        step(f"step_{i:03d}", [["in_progress", 0], ["completed", 50]]) for i in range(240, 250)
    ]
    scenario = {
        "threads": [
            {
                "id": "thread_p",
                "runs": [
                    {
                        "id": "run_p",
                        "timeline": [["in_progress", 0], ["completed", 60]],
                        "steps": steps,
                    }
                ],
            }
        ]
    }
    s = sim(scenario)
    s.advance(2)
    d = Daemon("run", "--config", str(config(tmp_path, s.base_url, [("thread_p", "run_p")])))
    try:
        exp = Expected()
        caught_up(d, s, exp)
        assert len([e for e in d.events if e["data"]["object"] == "thread.run.step"]) == 250
        first = s.stats()["by_route"]
        d.wait_for(lambda: s.stats()["by_route"]["run"] >= first["run"] + 6, 20, "6 more polls")
        later = s.stats()["by_route"]
        polls = later["run"] - first["run"]
        step_lists = later["steps"] - first["steps"]
        # the 240 finished steps are behind the cursor: one step list per poll, not three
        assert polls - 1 <= step_lists <= polls + 1
        s.advance(60)
        caught_up(d, s, exp)
        check_events(d.events, exp.pairs)
    finally:
        d.kill()


def test_thread_watch_finds_new_runs_only(sim, tmp_path):
    scenario = {
        "epoch": int(time.time()) - 100,
        "threads": [
            {
                "id": "thread_t",
                "runs": [
                    {"id": "run_old", "timeline": [["queued", 0], ["completed", 1]], "steps": []},
                    {
                        "id": "run_active",
                        "timeline": [["queued", 0], ["in_progress", 1], ["completed", 8]],
                        "steps": [],
                    },
                    {
                        "id": "run_new",
                        "timeline": [["queued", 200], ["in_progress", 201], ["completed", 202]],
                        "steps": [step("step_n1", [["in_progress", 201], ["completed", 202]])],
                    },
                ],
            }
        ],
    }
    s = sim(scenario)
    s.advance(2)  # run_old has finished before the watch begins; run_active is still going
    d = Daemon("run", "--config", str(config(tmp_path, s.base_url, [("thread_t", None)])))
    try:
        d.wait_for(lambda: ("run_active", "in_progress") in event_pairs(d.events), 20)
        s.advance(198)  # run_new is created after the watch began
        d.wait_for(lambda: ("run_new", "queued") in event_pairs(d.events), 20)
        s.advance(3)
        d.wait_for(lambda: ("run_new", "completed") in event_pairs(d.events), 20)
        pairs = event_pairs(d.events)
        assert ("step_n1", "completed") in pairs
        assert ("run_active", "completed") in pairs
        assert not any(obj == "run_old" for obj, _ in pairs)
    finally:
        d.kill()


@pytest.mark.parametrize(
    "faults",
    [
        [{"kind": "status", "status": 429, "retry_after": 0.3, "count": 2}],
        [{"kind": "status", "status": 500, "count": 3}],
        [{"kind": "html", "status": 503, "count": 2}],
        [{"kind": "truncated", "count": 2, "match": "steps"}],
        [{"kind": "reset", "count": 2}],
        [{"kind": "not_json", "count": 1, "match": "run"}],
    ],
    ids=["429", "500", "503-html", "truncated", "reset", "not-json"],
)
def test_faults_are_retried_and_nothing_is_lost(sim, tmp_path, faults):
    s = sim(SCENARIO)
    d = Daemon("run", "--config", str(config(tmp_path, s.base_url, ALL_RUNS)))
    try:
        exp = Expected()
        caught_up(d, s, exp)
        s.faults(faults)
        s.advance(2)
        caught_up(d, s, exp)
        d.wait_log('"retrying"')
        s.faults(faults)
        s.advance(5)
        caught_up(d, s, exp)
        check_events(d.events, exp.pairs)
        assert d.proc.poll() is None
    finally:
        d.kill()


def test_sigterm_exits_zero_quickly(sim, tmp_path):
    s = sim(SCENARIO)
    d = Daemon("run", "--config", str(config(tmp_path, s.base_url, ALL_RUNS)))
    try:
        caught_up(d, s)
        started = time.monotonic()
        assert d.stop(signal.SIGTERM, timeout=5) == 0
        assert time.monotonic() - started < 5
    finally:
        d.kill()


def test_sigkill_then_restart_loses_and_repeats_nothing(sim, tmp_path):
    s = sim(SCENARIO)
    cfg = config(tmp_path, s.base_url, ALL_RUNS)
    first = Daemon("run", "--config", str(cfg))
    exp = Expected()
    try:
        s.advance(1.5)
        caught_up(first, s, exp)
        # every line written is also marked written in the state file: a kill now can
        # repeat nothing (a kill between the two may repeat a line, with the same id)
        first.wait_for(lambda: stdout_pending(tmp_path / "state.db") == 0, 10, "marks")
    finally:
        first.kill()  # SIGKILL: no cleanup at all
    s.advance(2.0)  # transitions happen while the daemon is down
    second = Daemon("run", "--config", str(cfg))
    try:
        before = set(event_pairs(first.events))
        want = exp.snapshot(s)
        second.wait_for(lambda: want <= before | set(event_pairs(second.events)), 20)
        s.advance(5)
        want = exp.snapshot(s)
        second.wait_for(lambda: want <= before | set(event_pairs(second.events)), 20)
        check_events(first.events + second.events, exp.pairs)
        # a change that happened while down carries the last status reported before
        down = [e for e in second.events if e["data"]["id"] == "run_fail"]
        assert down[0]["previous_status"] == "in_progress"
    finally:
        second.kill()


@pytest.mark.parametrize(("run_id", "code"), [("run_ok", 0), ("run_fail", 1), ("run_cancel", 1)])
def test_watch_exit_status(sim, run_id, code):
    s = sim(SCENARIO)
    thread = "thread_a" if run_id != "run_cancel" else "thread_b"
    d = Daemon("watch", thread, run_id, "--exit-status", OPENAI_BASE_URL=s.base_url)
    try:
        d.wait_for(lambda: len(d.events) >= 1, 20)
        s.advance(10)
        assert d.wait_exit(30) == code
        assert event_pairs(d.events)[-1][0] == run_id
    finally:
        d.kill()


def test_watch_without_exit_status_exits_zero_on_failed_run(sim):
    s = sim(SCENARIO)
    s.advance(10)
    d = Daemon("watch", "thread_a", "run_fail", OPENAI_BASE_URL=s.base_url)
    assert d.wait_exit(30) == 0
    assert ("run_fail", "failed") in event_pairs(d.events)


def test_refused_key_is_said_plainly_and_never_printed(sim):
    s = sim(SCENARIO, api_key="sk-the-right-one-000000")
    d = Daemon("watch", "thread_a", "run_ok", OPENAI_BASE_URL=s.base_url, OPENAI_API_KEY=KEY)
    code = d.wait_exit(30)
    assert code == 3
    assert "API key was refused" in "".join(d.stderr)
    assert KEY not in d.output()
    assert d.events == []


def test_base_url_without_assistants_api(sim):
    s = sim(SCENARIO)
    wrong = s.base_url.removesuffix("/v1") + "/v2"
    d = Daemon("watch", "thread_a", "run_ok", OPENAI_BASE_URL=wrong)
    assert d.wait_exit(30) == 4
    assert "no Assistants API answers at" in "".join(d.stderr)


def test_missing_run_drops_that_watch_only(sim, tmp_path):
    s = sim(SCENARIO)
    s.advance(10)
    cfg = config(tmp_path, s.base_url, [("thread_a", "run_nope"), ("thread_a", "run_ok")])
    d = Daemon("run", "--config", str(cfg))
    try:
        d.wait_for(lambda: ("run_ok", "completed") in event_pairs(d.events), 20)
        d.wait_log("run_nope")
        assert d.proc.poll() is None
    finally:
        d.kill()


def test_malformed_id_in_config_sends_no_request(sim, tmp_path):
    s = sim(SCENARIO)
    cfg = config(tmp_path, s.base_url, [("thread_a", "run_ok%2F..")])
    d = Daemon("run", "--config", str(cfg))
    assert d.wait_exit(30) == 78
    assert s.stats()["requests"] == 0
    assert d.events == []


def test_demo_runs_to_its_end():
    d = Daemon("demo")
    assert d.wait_exit(90) == 0
    types = {e["type"] for e in d.events}
    assert "thread.run.completed" in types and "thread.run.failed" in types
    assert "thread.run.step.completed" in types
    # beside the runs, the scenario's background response and batch
    assert {"response.completed", "batch.finalizing", "batch.completed"} <= types


def test_state_file_that_fills_up_while_running_loses_nothing(sim, tmp_path):
    """A write that fails for want of space (here: the process's file-size limit) is logged
    and retried; nothing is printed until it is recorded, and nothing is lost after."""
    steps = [step(f"step_{i:03d}", [["in_progress", 1], ["completed", 2]]) for i in range(150)]
    run = {"id": "run_big", "timeline": [["queued", 0], ["in_progress", 1], ["completed", 3]]}
    s = sim({"threads": [{"id": "thread_f", "runs": [{**run, "steps": steps}]}]})
    d = Daemon("run", "--config", str(config(tmp_path, s.base_url, [("thread_f", "run_big")])))
    try:
        exp = Expected()
        caught_up(d, s, exp)  # run_big queued: recorded and printed
        files = [tmp_path / "state.db", tmp_path / "state.db-wal"]
        room = max(f.stat().st_size for f in files) + 8192
        resource.prlimit(d.proc.pid, resource.RLIMIT_FSIZE, (room, resource.RLIM_INFINITY))
        printed = len(d.events)
        s.advance(2.5)  # 150 steps and the run change at once: ~300 events, too big to fit
        d.wait_for(
            lambda: any("cannot write the state file" in line for line in d.stderr),
            20,
            "the failed write to be logged",
        )
        assert len(d.events) == printed  # nothing printed that was not recorded
        free = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
        resource.prlimit(d.proc.pid, resource.RLIMIT_FSIZE, free)
        caught_up(d, s, exp)  # the next try records them, then prints them
        s.advance(1)
        caught_up(d, s, exp)
        check_events(d.events, exp.pairs)  # every transition once, none lost
        assert d.proc.poll() is None  # still running
    finally:
        d.kill()


def test_requests_go_through_the_proxy_of_the_environment(sim, tmp_path):
    proxy = Proxy()
    try:
        s = sim(SCENARIO)
        cfg = config(tmp_path, s.base_url, ALL_RUNS)
        d = Daemon("run", "--config", str(cfg), HTTP_PROXY=proxy.url)
        try:
            caught_up(d, s)
            assert proxy.requests, "no request went through the proxy"
            assert all(u.startswith(s.base_url + "/threads/") for u in proxy.requests)
        finally:
            d.kill()
    finally:
        proxy.close()
