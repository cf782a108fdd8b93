"""A lone UTF-16 surrogate escape in an API answer (`"\\ud83d"`: text cut in the middle of an
emoji by a server that counts UTF-16 units) is valid JSON but not Unicode: it cannot be
written to SQLite, stdout or a webhook body as UTF-8. Before, such a run was never reported
and its watch never ended ("bug: a poll crashed" at every poll)."""

from __future__ import annotations

from tests.hostile_api import HostileApi
from tests.proc import Daemon, event_pairs
from tests.receiver import Receiver

SECRET = "whsec_bG9uZS1zdXJyb2dhdGUtc2VjcmV0LTEyMzQ1Njc4OTA="
RUN = {
    "id": "run_s",
    "object": "thread.run",
    "thread_id": "thread_s",
    "status": "completed",
    "metadata": {"note": "cut \ud83d here", "\udc00key": "fine 😀"},
}
STEP = {
    "id": "step_s",
    "object": "thread.run.step",
    "run_id": "run_s",
    "status": "completed",
    "step_details": {"type": "message_creation", "text": "half \udfff"},
}


def answers(path: str, n: int) -> object:
    if path.endswith("/steps"):
        return {"object": "list", "data": [STEP], "has_more": False, "last_id": "step_s"}
    return RUN


def test_a_lone_surrogate_in_an_answer_is_reported_as_u_fffd(tmp_path):
    api = HostileApi(answers)
    receiver = Receiver([SECRET])  # verifies with the reference `standardwebhooks`
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[api]\nbase_url = "{api.base_url}"\n[poll]\ninterval = 0.05\n'
        f'[state]\npath = "{tmp_path / "s.db"}"\n'
        f'[webhook]\nurl = "{receiver.url}"\nsecret = "{SECRET}"\n'
        '[[watch]]\nthread_id = "thread_s"\nrun_id = "run_s"\n'
    )
    d = Daemon("run", "--config", str(cfg))
    try:
        d.wait_log("run finished; watch ends")
        receiver.wait_for(lambda: len(receiver.received) == 2, 20, "both events")
        assert sorted(event_pairs(d.events)) == [("run_s", "completed"), ("step_s", "completed")]
        run = next(e["data"] for e in d.events if e["data"]["id"] == "run_s")
        assert run["metadata"] == {"note": "cut \ufffd here", "\ufffdkey": "fine 😀"}
        step = next(e["data"] for e in receiver.events() if e["data"]["id"] == "step_s")
        assert step["step_details"]["text"] == "half \ufffd"
        assert receiver.rejected == []
        assert "bug" not in "".join(d.stderr)
    finally:
        d.kill()
        receiver.close()
        api.close()
