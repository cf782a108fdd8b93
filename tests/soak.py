"""The fault soak: seeded runs through faults, a flapping receiver and SIGKILLs.

Used by tests/test_soak.py (bounded, in CI) and bench/soak.py (longer). Every observable
transition must reach stdout and the webhook at least once, with one id per transition and
per-run order kept; no crash; memory flat.
"""

from __future__ import annotations

import random
import signal
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.proc import Daemon, event_pairs
from tests.receiver import Receiver
from watcher.simulator.scenario import RunSpec, Scenario, ThreadSpec, generate_scenario

SECRET = "whsec_c29hay1zZWNyZXQtc29hay1zZWNyZXQtMTIzNDU2Nzg5MA=="

FAULTS: list[dict[str, Any]] = [
    {"kind": "status", "status": 429, "retry_after": 0.2, "count": 6},  # a 429 storm
    {"kind": "status", "status": 500, "count": 4},
    {"kind": "status", "status": 502, "count": 3},
    {"kind": "html", "status": 503, "count": 3},
    {"kind": "reset", "count": 3},
    {"kind": "delay", "seconds": 2.5, "count": 2},  # slower than the client's timeout
    {"kind": "truncated", "count": 3},
    {"kind": "not_json", "count": 2},
    {"kind": "mangle", "count": 3},  # missing and unknown fields
]


@dataclass
class SoakReport:
    runs: int = 0
    objects: int = 0
    steps: int = 0
    seconds: float = 0.0
    restarts: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    receiver_flaps: Counter[str] = field(default_factory=Counter)
    expected: int = 0
    stdout_delivered: int = 0
    webhook_delivered: int = 0
    stdout_lost: list[tuple[str, str]] = field(default_factory=list)
    webhook_lost: list[tuple[str, str]] = field(default_factory=list)
    stdout_duplicates: int = 0
    webhook_duplicates: int = 0
    ids_per_transition_max: int = 0
    order_violations: int = 0
    crashes: list[str] = field(default_factory=list)
    rss_mid_kb: int = 0
    rss_end_kb: int = 0

    def markdown(self, command: str) -> str:
        growth = (self.rss_end_kb / self.rss_mid_kb - 1) * 100 if self.rss_mid_kb else 0.0
        rss = f"{self.rss_mid_kb} / {self.rss_end_kb} KB ({growth:+.1f}%)"
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items()))
        flaps = ", ".join(f"{k} {v}" for k, v in sorted(self.receiver_flaps.items()))
        return f"""# Reliability

Measured by `{command}` ({self.seconds:.0f} s).

| figure | value |
|---|---|
| runs / objects (runs + steps) | {self.runs} / {self.objects} |
| clock steps | {self.steps} |
| API faults injected, by kind | {faults} |
| webhook receiver flaps | {flaps} |
| daemon SIGKILLs and restarts | {self.restarts} |
| observable transitions expected | {self.expected} |
| delivered on stdout / lost | {self.stdout_delivered} / {len(self.stdout_lost)} |
| delivered to the webhook (verified) / lost | {self.webhook_delivered} / {len(self.webhook_lost)} |
| duplicates on stdout / webhook (same id) | {self.stdout_duplicates} / {self.webhook_duplicates} |
| distinct ids per transition (max) | {self.ids_per_transition_max} |
| per-run order violations | {self.order_violations} |
| crashes (tracebacks, bugs, bad exits) | {len(self.crashes)} |
| RSS at the middle / end of the last run | {rss} |

A transition is observable when a poll can see it: the simulator's clock stops after each
step, and every object's status at each stop is expected. Duplicates are redeliveries of
events whose delivery may already have succeeded (a SIGKILL before the delivery was marked,
or a receiver that answered after the client's timeout); they carry the same id.
"""


def scenario(runs: int, seed: int, duration: float) -> Scenario:
    base = generate_scenario(runs=runs, seed=seed, duration=duration, long_runs=2, threads=10)
    odd = ThreadSpec(
        id="thread_soak_odd",
        runs=(
            RunSpec(
                id="run_soak_unknown",
                timeline=(
                    ("queued", 0.0),
                    ("in_progress", 1.0),
                    ("paused_for_review", 3.0),
                    ("in_progress", 5.0),
                    ("completed", 7.0),
                ),
            ),
        ),
    )
    return Scenario(threads=(*base.threads, odd), epoch=base.epoch)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def config(tmp_path: Path, base_url: str, hook_url: str, runs: list[tuple[str, str]]) -> Path:
    lines = [
        "[api]",
        f'base_url = "{base_url}"',
        # the whole exchange (not each read): room for a loaded CI machine's event loop
        "timeout = 2.0",
        "[poll]",
        "interval = 0.1",
        "max_interval = 0.5",
        "idle_after = 100",
        "max_concurrency = 32",
        "[retry]",
        "attempts = 3",
        "initial_delay = 0.05",
        "max_delay = 0.3",
        "[state]",
        f'path = "{tmp_path / "soak.db"}"',
        "[webhook]",
        f'url = "{hook_url}"',
        f'secret = "{SECRET}"',
        "timeout = 1.0",
        "max_age = 3600",
        "schedule = [0, 0.2, 0.5, 1.0]",
    ]
    for thread_id, run_id in runs:
        lines += ["[[watch]]", f'thread_id = "{thread_id}"', f'run_id = "{run_id}"']
    path = tmp_path / "soak.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _first_seen(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: set[tuple[str, str]] = set()
    out = []
    for p in pairs:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def perturb(i: int, rng: random.Random, s: Any, receiver: Receiver, flaps: Counter[str]) -> None:
    """Step `i`'s trouble: 1 to 3 API faults, and the receiver's flap of the step (down, up,
    a burst of 500s, slower than the webhook's timeout, back to normal), counted in `flaps`."""
    for _ in range(rng.randint(1, 3)):
        fault = dict(rng.choice(FAULTS))
        s.faults([fault])
    phase = i % 8
    if phase == 1 and receiver.is_up:
        receiver.down()
        flaps["down"] += 1
    elif phase == 3 and not receiver.is_up:
        receiver.start()
        flaps["up"] += 1
    elif phase == 4:
        receiver.script = [500] * 4
        flaps["500s"] += 1
    elif phase == 5:
        receiver.delay = 1.5  # beyond the webhook timeout
        flaps["slow"] += 1
    elif phase == 6:
        receiver.delay = 0.0


def tally(
    report: SoakReport,
    expected: set[tuple[str, str]],
    stdout_events: list[dict[str, Any]],
    hook_events: list[dict[str, Any]],
) -> None:
    """What reached stdout and the webhook against `expected`: delivered, lost, duplicates
    (same id again), distinct ids per transition."""
    report.expected = len(expected)
    stdout_list = event_pairs(stdout_events)
    hook_list = [(e["data"]["id"], e["data"]["status"]) for e in hook_events]
    report.stdout_delivered = len(set(stdout_list) & expected)
    report.webhook_delivered = len(set(hook_list) & expected)
    report.stdout_lost = sorted(expected - set(stdout_list))
    report.webhook_lost = sorted(expected - set(hook_list))
    report.stdout_duplicates = len(stdout_list) - len(set(stdout_list))
    report.webhook_duplicates = len(hook_list) - len(set(hook_list))
    ids: dict[tuple[str, str], set[str]] = defaultdict(set)
    for e in stdout_events + hook_events:
        ids[(e["data"]["id"], e["data"]["status"])].add(e["id"])
    report.ids_per_transition_max = max((len(v) for v in ids.values()), default=0)


def run_soak(
    sim: Any,
    tmp_path: Path,
    *,
    runs: int = 300,
    seed: int = 7,
    kills: int = 5,
    steps: int = 40,
    step_seconds: float = 0.5,
) -> SoakReport:
    started = time.monotonic()
    rng = random.Random(seed)
    spec = scenario(runs, seed, steps * step_seconds * 0.7)
    s = sim(spec)
    receiver = Receiver([SECRET])
    watches = [(t.id, r.id) for t in spec.threads for r in t.runs]
    cfg = config(tmp_path, s.base_url, receiver.url, watches)
    report = SoakReport(runs=len(watches), steps=steps)
    report.objects = sum(1 + len(r.steps) for t in spec.threads for r in t.runs)
    kill_at = set(rng.sample(range(1, steps // 2), kills))
    daemons = [Daemon("run", "--config", str(cfg))]
    expected: set[tuple[str, str]] = set()

    def stdout_pairs() -> set[tuple[str, str]]:
        return {p for d in daemons for p in event_pairs(d.events)}

    def snapshot() -> set[tuple[str, str]]:
        current: dict[str, str] = {}
        for t in s.transitions():
            current[t["id"]] = t["status"]
        expected.update(current.items())
        return expected

    try:
        daemons[0].wait_log('"watching"', 30)
        for i in range(steps):
            perturb(i, rng, s, receiver, report.receiver_flaps)
            s.advance(step_seconds)
            want = snapshot()
            if i in kill_at:
                daemons[-1].kill()  # SIGKILL at a random moment: mid-poll, mid-delivery
                report.restarts += 1
                daemons.append(Daemon("run", "--config", str(cfg)))
            try:
                daemons[-1].wait_for(lambda w=want: w <= stdout_pairs(), 60, f"step {i}")
            except AssertionError as exc:
                missing = sorted(want - stdout_pairs())
                raise AssertionError(f"{exc}; missing {len(missing)}: {missing[:8]}") from None
            if i == steps * 3 // 4:
                report.rss_mid_kb = rss_kb(daemons[-1].proc.pid)
        if not receiver.is_up:
            receiver.start()
        receiver.script, receiver.delay = [], 0.0
        want = snapshot()
        daemons[-1].wait_for(lambda: want <= stdout_pairs(), 60, "the end on stdout")
        receiver.wait_for(
            lambda: (
                want
                <= {
                    (e["data"]["id"], e["data"]["status"])
                    for e in [r["event"] for r in receiver.received]
                }
            ),
            90,
            "the end at the webhook",
        )
        report.rss_end_kb = rss_kb(daemons[-1].proc.pid)
        code = daemons[-1].stop(signal.SIGTERM)
        if code != 0:
            report.crashes.append(f"last daemon exited {code}")
    finally:
        for d in daemons:
            d.kill()
        receiver.close()
    for d in daemons:
        for line in d.stderr:
            if "Traceback" in line or '"bug:' in line:
                report.crashes.append(line.strip()[:200])
    report.faults = Counter(s.stats()["faults_injected"])
    all_stdout = [e for d in daemons for e in d.events]
    hook_events = [r["event"] for r in receiver.received]
    tally(report, expected, all_stdout, hook_events)
    run_of = {e["id"]: e["data"].get("run_id") or e["data"]["id"] for e in all_stdout}
    by_run_stdout: dict[str, list[str]] = defaultdict(list)
    by_run_hook: dict[str, list[str]] = defaultdict(list)
    for e in all_stdout:
        by_run_stdout[run_of[e["id"]]].append(e["id"])
    for e in hook_events:
        by_run_hook[run_of.get(e["id"], "?")].append(e["id"])
    for run, hook_ids in by_run_hook.items():
        first_hook = [x for x, _ in _first_seen([(i, "") for i in hook_ids])]
        first_out = [x for x, _ in _first_seen([(i, "") for i in by_run_stdout[run]])]
        if first_hook != first_out[: len(first_hook)]:
            report.order_violations += 1
    report.seconds = time.monotonic() - started
    return report
