"""/status and GET /v1/watches: active watches by default, paged, `?all=1` for the finished."""

from __future__ import annotations

import httpx

from tests import test_production as prod
from tests.proc import Daemon

RUNS = [f"run_{i}" for i in range(1, 6)]
SCENARIO = {
    "threads": [
        {
            "id": "thread_a",
            "runs": [
                {
                    "id": run_id,
                    "timeline": [["queued", 0], ["completed", 3 if i < 3 else 1000]],
                }
                for i, run_id in enumerate(RUNS)
            ],
        },
        {"id": "thread_b", "runs": []},
    ]
}


def pages(url: str, **params: str) -> list[list[tuple[str, str | None, bool]]]:
    out = []
    after = None
    while True:
        q = dict(params, **({"after": after} if after else {}))
        page = httpx.get(f"{url}/v1/watches", params=q, headers=prod.auth()).json()
        out.append([(w["thread_id"], w["run_id"], w["active"]) for w in page["watches"]])
        after = page["next"]
        if after is None:
            return out


def test_watches_are_listed_by_page_active_ones_unless_all(sim, tmp_path):
    s = sim(SCENARIO)
    port = prod.free_port()
    watches = [("thread_a", r) for r in RUNS] + [("thread_b", None)]
    cfg = prod.config(tmp_path, s.base_url, watches, port=port)
    url = f"http://127.0.0.1:{port}"
    d = Daemon("run", "--config", str(cfg), OPENAI_API_KEY=prod.KEY)
    try:
        d.wait_log("http endpoint listening")
        d.wait_events(5)
        got = pages(url, limit="2")
        assert [len(p) for p in got] == [2, 2, 2, 0]
        every = [w for p in got for w in p]
        assert every == [("thread_a", r, True) for r in RUNS] + [("thread_b", None, True)]
        s.advance(5)
        d.wait_for(lambda: sum("watch ends" in line for line in d.stderr) == 3)
        active = [w for p in pages(url, limit="4") for w in p]
        assert active == [("thread_a", r, True) for r in RUNS[3:]] + [("thread_b", None, True)]
        everything = [w for p in pages(url, limit="4", all="1") for w in p]
        assert everything == [("thread_a", r, i >= 3) for i, r in enumerate(RUNS)] + [
            ("thread_b", None, True)
        ]
        status = httpx.get(f"{url}/status", params={"limit": "1"}, headers=prod.auth()).json()
        assert [w["run_id"] for w in status["watches"]] == ["run_4"]
        assert status["watches_next"] == "thread_a/run_4"
        assert status["watched"] == {"runs": 2, "threads": 1}
        assert status["replica"] is None  # one process on its state file: no leases
        for bad in ({"limit": "0"}, {"limit": "x"}, {"after": "../x"}):
            r = httpx.get(f"{url}/v1/watches", params=bad, headers=prod.auth())
            assert r.status_code == 422 and r.json()["error"]["field"] in bad
    finally:
        assert d.stop() == 0
