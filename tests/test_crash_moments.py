"""SIGKILL at awkward moments, then a restart on the same state: nothing lost, and an event
seen twice (stdout or webhook) carries the same id both times."""

from __future__ import annotations

from collections import defaultdict

from tests.proc import Daemon, event_pairs
from tests.receiver import Receiver

SECRET = "whsec_Y3Jhc2gtbW9tZW50cy1zZWNyZXQtMTIzNDU2Nzg5MA=="
SCENARIO = {
    "threads": [
        {
            "id": "thread_k",
            "runs": [
                {
                    "id": f"run_k{i}",
                    "timeline": [["queued", 0], ["in_progress", 1], ["completed", 3]],
                    "steps": [
                        {"id": f"step_k{i}", "timeline": [["in_progress", 1], ["completed", 2]]}
                    ],
                }
                for i in range(3)
            ],
        }
    ]
}
RUNS = "".join(f'[[watch]]\nthread_id = "thread_k"\nrun_id = "run_k{i}"\n' for i in range(3))


def config(tmp_path, base_url, hook_url):
    path = tmp_path / "c.toml"
    path.write_text(
        f'[api]\nbase_url = "{base_url}"\n[poll]\ninterval = 0.05\nmax_interval = 0.2\n'
        f'[state]\npath = "{tmp_path / "s.db"}"\n'
        f'[webhook]\nurl = "{hook_url}"\nsecret = "{SECRET}"\nschedule = [0, 0.2, 0.5]\n' + RUNS
    )
    return str(path)


def one_id_per_transition(events):
    ids = defaultdict(set)
    for e in events:
        ids[(e["data"]["id"], e["data"]["status"])].add(e["id"])
    return {k: v for k, v in ids.items() if len(v) > 1}


def test_killed_while_a_webhook_post_is_in_flight(sim, tmp_path):
    s = sim(SCENARIO)
    receiver = Receiver([SECRET])
    receiver.delay = 1.0  # a slow endpoint: the kill lands while posts are in flight
    cfg = config(tmp_path, s.base_url, receiver.url)
    first = Daemon("run", "--config", cfg)
    try:
        first.wait_events(3)
        receiver.wait_for(lambda: receiver.in_flight > 0, 20, "a post in flight")
    finally:
        first.kill()
    receiver.delay = 0.0
    s.advance(4)  # every run ends while the daemon is down
    second = Daemon("run", "--config", cfg)
    try:
        every = {(f"run_k{i}", st) for i in range(3) for st in ("queued", "completed")}
        second.wait_for(lambda: every <= set(event_pairs(first.events + second.events)), 20)
        stdout = first.events + second.events
        receiver.wait_for(
            lambda: {e["id"] for e in stdout} <= {e["id"] for e in receiver.events()}, 20, "all"
        )
        assert one_id_per_transition(stdout + receiver.events()) == {}
        assert receiver.rejected == []
    finally:
        second.kill()
        receiver.close()
