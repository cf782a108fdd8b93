"""Pacing under faults and under a server's rate limit: the real daemon, default config.

(a) faults: 20 runs polled every 0.5 s, statuses lasting 5 s, 13% of requests failing at
    random (500, HTML 503, truncated JSON), a 2 s storm of 429s every 12 s: transitions
    missed (want 0).
(b) limit: a server allowing 30 requests/s (token bucket, `simulate --rate-limit 30`: 429
    beyond it with retry-after-ms and x-ratelimit-*), 40 runs polled every second (a run
    GET and a step list each: ~80 requests/s wanted): share
    of the allowance used (want >= 85%) and of requests refused (want <= 5%).
Each is run with the default config and, as the baseline in the same run, with the old
default budget (`max_requests_per_second = 15`).

python bench/ratelimit.py --report bench/ratelimit.md      (~4 min)
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from anyio.from_thread import start_blocking_portal

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.proc import Daemon, event_pairs  # noqa: E402
from watcher.simulator.app import RealClock, create_app  # noqa: E402
from watcher.simulator.limiter import TokenBucket  # noqa: E402
from watcher.simulator.scenario import RunSpec, Scenario, StepSpec, ThreadSpec  # noqa: E402
from watcher.simulator.server import serve  # noqa: E402

HTML_503 = b"<html><head><title>503 Service Temporarily Unavailable</title></head></html>"


class Chaos:
    """ASGI wrapper: random failures and periodic 429 storms on /v1, counted."""

    def __init__(self, app: Any, *, fail: float, storm_every: float, storm: float) -> None:
        self.app, self.fail, self.storm_every, self.storm = app, fail, storm_every, storm
        self.rng = random.Random(1)
        self.start = time.monotonic()
        self.counts: Counter[str] = Counter()

    async def _send(self, send: Any, status: int, body: bytes, headers: list[Any]) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1"):
            await self.app(scope, receive, send)
            return
        self.counts["requests"] += 1
        t = time.monotonic() - self.start
        json_type = (b"content-type", b"application/json")
        if self.storm_every and t % self.storm_every >= self.storm_every - self.storm:
            self.counts["429 storm"] += 1
            body = b'{"error": {"message": "Rate limit reached.", "type": "requests"}}'
            await self._send(send, 429, body, [json_type, (b"retry-after", b"1")])
            return
        roll = self.rng.random()
        if roll < self.fail / 3:
            self.counts["500"] += 1
            body = b'{"error": {"message": "The server had an error.", "type": "server_error"}}'
            await self._send(send, 500, body, [json_type])
        elif roll < self.fail * 2 / 3:
            self.counts["HTML 503"] += 1
            await self._send(send, 503, HTML_503, [(b"content-type", b"text/html")])
        elif roll < self.fail:
            self.counts["truncated JSON"] += 1
            parts: list[bytes] = []

            async def keep(message: Any) -> None:
                if message["type"] == "http.response.body":
                    parts.append(message.get("body", b""))

            await self.app(scope, receive, keep)
            body = b"".join(parts)
            await self._send(send, 200, body[: len(body) // 2], [json_type])
        else:
            await self.app(scope, receive, send)


class Server:
    """An ASGI app served on 127.0.0.1 from a thread with its own event loop."""

    def __init__(self, app: Any) -> None:
        self.base_url = ""
        ready = threading.Event()

        def on_ready(url: str) -> None:
            self.base_url = url
            ready.set()

        self._cm = start_blocking_portal(name="server")
        self._future = self._cm.__enter__().start_task_soon(lambda: serve(app, on_ready=on_ready))
        if not ready.wait(10):
            raise RuntimeError("the server did not start")

    def close(self) -> None:
        self._future.cancel()
        self._cm.__exit__(None, None, None)


def faults_scenario(runs: int) -> Scenario:
    """Every status lasts 5 s: queued, then in_progress / requires_action four times, then
    in_progress and completed at 50 s; a step runs through each in_progress."""
    specs = []
    for i in range(runs):
        statuses = ["queued", *["in_progress", "requires_action"] * 4, "in_progress", "completed"]
        timeline = tuple((st, 5.0 * k) for k, st in enumerate(statuses))
        steps = tuple(
            StepSpec(
                f"step_{i}_{k}", "message_creation", (("in_progress", t), ("completed", t + 5))
            )
            for k, (st, t) in enumerate(timeline)
            if st == "in_progress"
        )
        specs.append(RunSpec(f"run_bench_{i:03d}", timeline, steps))
    return Scenario(threads=(ThreadSpec("thread_bench", tuple(specs)),), epoch=time.time())


def busy_scenario(runs: int) -> Scenario:
    """Runs that never stop changing (a new step every 2 s) for the whole measure."""
    specs = [
        RunSpec(
            f"run_busy_{i:03d}",
            (("queued", 0.0), ("in_progress", 1.0), ("completed", 1000.0)),
            tuple(
                StepSpec(
                    f"step_busy_{i}_{k}",
                    "message_creation",
                    (("in_progress", 1.0 + 2 * k), ("completed", 2.0 + 2 * k)),
                )
                for k in range(499)
            ),
        )
        for i in range(runs)
    ]
    return Scenario(threads=(ThreadSpec("thread_busy", tuple(specs)),), epoch=time.time())


def config(tmp: Path, base_url: str, scenario: Scenario, poll: list[str]) -> Path:
    lines = ["[api]", f'base_url = "{base_url}"', "[poll]", *poll, "[state]"]
    lines.append(f'path = "{tmp / f"state-{time.monotonic_ns()}.db"}"')
    for t in scenario.threads:
        for r in t.runs:
            lines += ["[[watch]]", f'thread_id = "{t.id}"', f'run_id = "{r.id}"']
    path = tmp / f"config-{time.monotonic_ns()}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def bench_faults(tmp: Path, poll: list[str]) -> dict[str, Any]:
    scenario = faults_scenario(20)
    expected = {
        (obj.id, status)
        for r in scenario.threads[0].runs
        for obj in (r, *r.steps)
        for status, _ in obj.timeline
    }
    chaos = Chaos(create_app(scenario, clock=RealClock()), fail=0.13, storm_every=12.0, storm=2.0)
    server = Server(chaos)
    daemon = Daemon("run", "--config", str(config(tmp, server.base_url, scenario, poll)))
    started = time.monotonic()
    try:
        with contextlib.suppress(AssertionError):  # missed ones are counted below
            daemon.wait_for(lambda: expected <= set(event_pairs(daemon.events)), 55, "all")
        seconds = time.monotonic() - started
        daemon.stop()
    finally:
        daemon.kill()
        server.close()
    seen = set(event_pairs(daemon.events))
    missed = sorted(expected - seen)
    return {
        "seconds": round(seconds, 1),
        "expected": len(expected),
        "missed": len(missed),
        "missed_examples": missed[:5],
        "requests": chaos.counts["requests"],
        "faults": {k: v for k, v in chaos.counts.items() if k != "requests"},
    }


def bench_limit(tmp: Path, poll: list[str], seconds: float) -> dict[str, Any]:
    scenario = busy_scenario(40)
    bucket = TokenBucket(30.0)
    server = Server(create_app(scenario, clock=RealClock(), rate_limit=bucket))
    daemon = Daemon("run", "--config", str(config(tmp, server.base_url, scenario, poll)))
    try:
        daemon.wait_log('"watching"', 30)
        time.sleep(5.0)  # a bench, not a test: let it settle, then measure a window
        a0, r0, t0 = bucket.allowed, bucket.refused, time.monotonic()
        time.sleep(seconds)
        a1, r1, t1 = bucket.allowed, bucket.refused, time.monotonic()
        daemon.stop()
    finally:
        daemon.kill()
        server.close()
    allowed, refused = a1 - a0, r1 - r0
    allowance = 30.0 * (t1 - t0)
    return {
        "seconds": round(t1 - t0, 1),
        "allowed": allowed,
        "refused": refused,
        "used": allowed / allowance,
        "refused_share": refused / max(1, allowed + refused),
    }


def row(name: str, r: dict[str, Any], bold: str) -> str:
    used, refused = f"{bold}{r['used']:.0%}{bold}", f"{bold}{r['refused_share']:.1%}{bold}"
    return f"| {name} | {r['allowed']} | {r['refused']} | {used} | {refused} |"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=45.0, help="measure of (b)")
    p.add_argument("--report", type=Path)
    p.add_argument("--only", choices=["a", "b"], help="run one part (no report)")
    args = p.parse_args()
    if args.only:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            if args.only == "a":
                print(bench_faults(tmp, ["interval = 0.5"]))
            else:
                print(bench_limit(tmp, [], args.seconds))
        return
    default = ["interval = 0.5"]
    old = ["interval = 0.5", "max_requests_per_second = 15"]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        fa, fa_old = bench_faults(tmp, default), bench_faults(tmp, old)
        budget = ["max_requests_per_second = 15"]
        li, li_old = bench_limit(tmp, [], args.seconds), bench_limit(tmp, budget, args.seconds)
    faults = ", ".join(f"{k} {v}" for k, v in sorted(fa["faults"].items()))
    report = f"""# Pacing: faults, 429 storms and a server's rate limit

Measured by `python bench/ratelimit.py --report bench/ratelimit.md` (the real daemon as a
process against the simulator on 127.0.0.1; 2 shared cores). "Default" is the default
config (with `[poll] interval = 0.5` in (a)); the baseline, in the same run, adds the old default
budget `max_requests_per_second = 15` (the rest of this version's changes stay: the
baseline isolates the budget).

## (a) Faults: 20 runs, interval 0.5 s, statuses of 5 s, 13% failures, 2 s of 429s every 12 s

Each run: queued, in_progress / requires_action four times, in_progress, completed, every
status 5 s, a step through each in_progress: 14 objects' statuses per run over 50 s.

| config | transitions expected | missed | API requests | faults injected |
|---|---|---|---|---|
| default | {fa["expected"]} | **{fa["missed"]}** | {fa["requests"]} | {faults} |
| old budget (15/s) | {fa_old["expected"]} | {fa_old["missed"]} | {fa_old["requests"]} | |

## (b) A server allowing 30 requests/s, 40 runs at the default interval (~80 requests/s wanted)

Each run starts a new step every 2 s, so no run backs off: each poll is a run GET and a
step list. The allowance is 30/s over the window; the bucket's burst of 30, full at the
window's start, can add up to 2%.

Measured over {li["seconds"]:.0f} s after 5 s of settling.

| config | allowed | refused (429) | allowance used (want >= 85%) | refused (want <= 5%) |
|---|---|---|---|---|
{row("default", li, "**")}
{row("old budget (15/s)", li_old, "")}

Ratio of allowance used, default vs old budget: {li["used"] / max(li_old["used"], 1e-9):.2f}x.
"""
    print(report)
    if fa["missed"]:
        print("missed:", fa["missed_examples"])
    if args.report:
        args.report.write_text(report)


if __name__ == "__main__":
    main()
