"""Webhooks end to end: the daemon process, a real receiver, the outbox commands."""

from __future__ import annotations

from tests.cli import run_cli
from tests.proc import Daemon, event_pairs
from tests.receiver import Receiver

SECRET_OLD = "whsec_b2xkLXNlY3JldC1vbGQtc2VjcmV0LTEyMzQ1Njc4"
SECRET_NEW = "whsec_bmV3LXNlY3JldC1uZXctc2VjcmV0LTEyMzQ1Njc4OTA="
SCENARIO = {
    "threads": [
        {
            "id": "thread_w",
            "runs": [
                {
                    "id": "run_w1",
                    "timeline": [["queued", 0], ["in_progress", 1], ["completed", 2]],
                    "steps": [
                        {"id": "step_w1", "timeline": [["in_progress", 1], ["completed", 2]]}
                    ],
                },
            ],
        }
    ]
}


def config(tmp_path, base_url, hook_url, secrets):
    quoted = ", ".join(f'"{s}"' for s in secrets)
    path = tmp_path / "c.toml"
    path.write_text(
        f'[api]\nbase_url = "{base_url}"\n[poll]\ninterval = 0.05\nmax_interval = 0.2\n'
        f'[state]\npath = "{tmp_path / "s.db"}"\n'
        f'[webhook]\nurl = "{hook_url}"\nsecret = [{quoted}]\nschedule = [0, 0.2, 0.5]\n'
        '[[watch]]\nthread_id = "thread_w"\nrun_id = "run_w1"\n'
    )
    return str(path)


def test_rotation_refusal_dead_letter_and_replay(sim, tmp_path):
    s = sim(SCENARIO)
    receiver = Receiver([SECRET_OLD, SECRET_NEW])  # both signatures must verify
    receiver.script = [400]  # the endpoint refuses the first event
    cfg = config(tmp_path, s.base_url, receiver.url, [SECRET_OLD, SECRET_NEW])
    d = Daemon("run", "--config", cfg)
    try:
        d.wait_log("dead-lettered")
        s.advance(3)
        d.wait_for(lambda: ("run_w1", "completed") in event_pairs(d.events))
        # every event but the refused one arrives; which ones depends on what the polls saw
        others = [e["id"] for e in d.events[1:]]
        receiver.wait_for(lambda: len(receiver.received) == len(others), 20, "the others")
        listed = run_cli("outbox", "list", "--config", cfg)
        assert listed.returncode == 0
        assert "dead" in listed.stdout and "thread.run.queued" in listed.stdout
        assert "0 pending, 1 dead" in listed.stderr
        replay = run_cli("outbox", "replay", "--all", "--config", cfg)
        assert replay.returncode == 0 and "1 dead letter(s) queued again" in replay.stderr
        receiver.wait_for(lambda: len(receiver.received) == len(d.events), 20, "the replay")
        ids = [r["event"]["id"] for r in receiver.received]
        assert sorted(ids) == sorted(e["id"] for e in d.events)
        assert receiver.received[-1]["event"]["type"] == "thread.run.queued"
        assert receiver.rejected == []
        assert SECRET_OLD not in d.output() and SECRET_NEW not in d.output()
    finally:
        d.kill()
        receiver.close()


def test_receiver_down_then_back_delivers_everything_in_order(sim, tmp_path):
    s = sim(SCENARIO)
    receiver = Receiver([SECRET_NEW])
    receiver.down()
    cfg = config(tmp_path, s.base_url, receiver.url, [SECRET_NEW])
    d = Daemon("run", "--config", cfg)
    try:
        s.advance(3)
        d.wait_for(lambda: ("run_w1", "completed") in event_pairs(d.events))
        d.wait_log("webhook delivery failed")
        receiver.start()
        want = {e["id"] for e in d.events}
        receiver.wait_for(lambda: {r["event"]["id"] for r in receiver.received} == want, 30)
        first = []
        for r in receiver.received:
            if r["event"]["id"] not in first:
                first.append(r["event"]["id"])
        assert first == [e["id"] for e in d.events]  # per-run order kept
    finally:
        d.kill()
        receiver.close()
