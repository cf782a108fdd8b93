"""The replica soak: N `runstep-watcher run` processes on one PostgreSQL database, the
single-process soak's runs, API faults and flapping receiver (tests/soak.py), and one
replica SIGKILLed and restarted every `kill_every` seconds.

Used by tests/test_soak_replicas.py. Checked: every observable transition on the stdout
of the replicas together and at the receiver, each event recorded once in the database
(one id per transition), per-run order at the receiver and on each replica's stdout (the
database's order), and the time from each SIGKILL to the next poll of every open watch
by another process (tests/request_log.py).
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from tests.pg import PgServer
from tests.proc import Daemon, event_pairs
from tests.receiver import Receiver
from tests.request_log import Kill, RequestLog, cadence, failover, process_url
from tests.soak import SECRET, config, perturb, scenario, tally
from tests.soak_replicas_report import ReplicaReport


def replica_config(
    tmp_path: Path,
    base_url: str,
    hook_url: str,
    watches: list[tuple[str, str]],
    *,
    db_url: str,
    n: int,
    lease: float,
    interval: float,
    max_interval: float,
) -> Path:
    """tests/soak.py's config on PostgreSQL, for process `n` (its own simulator prefix)."""
    text = config(tmp_path, process_url(base_url, n), hook_url, watches).read_text()
    text = text.replace("interval = 0.1\n", f"interval = {interval:g}\n")
    text = text.replace("max_interval = 0.5\n", f"max_interval = {max_interval:g}\n")
    state = f'url = "{db_url}"\nlease = {lease:g}'
    text = text.replace(f'path = "{tmp_path / "soak.db"}"', state)
    path = tmp_path / f"replica-{n}.toml"
    path.write_text(text)
    return path


def _rows(db: PgServer, sql: str) -> list[list[str]]:
    return [line.split("|") for line in db.psql(sql).splitlines() if line]


def _order_checks(
    report: ReplicaReport, db: PgServer, daemons: list[Daemon], hook_events: list[dict[str, Any]]
) -> None:
    """Per run, the receiver's first arrivals and each replica's stdout in the order of the
    database's seqs (the order the events were recorded in)."""
    seq: dict[str, int] = {}
    run_of: dict[str, str] = {}
    for i, (run, event) in enumerate(_rows(db, "SELECT run_id, event_id FROM events ORDER BY seq")):
        seq.setdefault(event, i)
        run_of[event] = run
    report.recorded_twice = int(
        db.psql(
            "SELECT COUNT(*) FROM (SELECT event_id FROM events GROUP BY event_id"
            " HAVING COUNT(*) > 1) twice"
        )
    )

    def violations(ids: list[str]) -> int:
        per_run: dict[str, list[int]] = defaultdict(list)
        for i in dict.fromkeys(ids):  # first arrivals
            per_run[run_of.get(i, "?")].append(seq.get(i, -1))
        return sum(1 for s in per_run.values() if s != sorted(s))

    report.order_violations = violations([e["id"] for e in hook_events])
    report.stdout_order_violations = sum(violations([e["id"] for e in d.events]) for d in daemons)


def run_replica_soak(
    sim: Any,
    tmp_path: Path,
    db: PgServer,
    *,
    replicas: int = 3,
    runs: int = 300,
    seed: int = 7,
    kills: int = 6,
    kill_every: float = 10.0,
    lease: float = 3.0,
    interval: float = 1.0,
    max_interval: float = 1.0,
    steps: int = 64,
    step_seconds: float = 0.5,
    step_wall: float = 1.0,
) -> ReplicaReport:
    """Up to `steps` steps of the simulator's clock, each at least `step_wall` s of real
    time (the kills are on real time): once the kills are done and the last one's failover
    seen, the rest of the scenario's time passes in one step (a bound on a slow machine)."""
    started = time.monotonic()
    rng = random.Random(seed)
    spec = scenario(runs, seed, steps * step_seconds * 0.9)
    log = RequestLog()
    s = sim(spec, wrap=log.wrap)
    receiver = Receiver([SECRET])
    watches = [(t.id, r.id) for t in spec.threads for r in t.runs]
    report = ReplicaReport(runs=len(watches), steps=steps, replicas=replicas, lease=lease)
    report.interval, report.max_interval = interval, max_interval
    report.objects = sum(1 + len(r.steps) for t in spec.threads for r in t.runs)
    daemons: list[Daemon] = []
    kill_log: list[Kill] = []
    expected: set[tuple[str, str]] = set()

    def start() -> int:
        n = len(daemons)
        cfg = replica_config(
            tmp_path,
            s.base_url,
            receiver.url,
            watches,
            db_url=db.url,
            n=n,
            lease=lease,
            interval=interval,
            max_interval=max_interval,
        )
        daemons.append(Daemon("run", "--config", str(cfg), cwd=tmp_path))
        return n

    def stdout_pairs() -> set[tuple[str, str]]:
        return {p for d in daemons for p in event_pairs(d.events)}

    def snapshot() -> set[tuple[str, str]]:
        current = {t["id"]: t["status"] for t in s.transitions()}
        expected.update(current.items())
        return set(expected)

    def caught_up(what: str, want: set[tuple[str, str]]) -> None:
        try:
            daemons[-1].wait_for(lambda: want <= stdout_pairs(), 60, what)
        except AssertionError as exc:
            missing = sorted(want - stdout_pairs())
            raise AssertionError(f"{exc}; missing {len(missing)}: {missing[:8]}") from None

    slots: list[int] = []
    try:
        slots = [start() for _ in range(replicas)]
        for n in slots:
            daemons[n].wait_log('"watching"', 60)
        next_kill = time.monotonic() + kill_every
        settled = float("inf")  # the last kill's failover seen: no more steps needed
        i = 0
        while i < steps and (len(kill_log) < kills or time.monotonic() < settled):
            begun = time.monotonic()
            perturb(i, rng, s, receiver, report.receiver_flaps)
            s.advance(step_seconds)
            want = snapshot()
            if len(kill_log) < kills and time.monotonic() >= next_kill:
                slot = len(kill_log) % replicas
                victim = slots[slot]
                daemons[victim].kill()  # SIGKILL: mid-poll, mid-lease, mid-delivery
                at = time.monotonic()
                open_ = db.psql("SELECT run_id FROM run_watches WHERE done = 0").split()
                kill_log.append(Kill(at, victim, frozenset(open_)))
                slots[slot] = start()
                next_kill += kill_every
                settled = at + lease + 2 * max_interval + 2.0
            caught_up(f"step {i}", want)
            left = step_wall - (time.monotonic() - begun)
            if left > 0:  # pacing the simulated world on real time, not a synchronisation
                threading.Event().wait(left)
            i += 1
        if i < steps:  # a slow machine: the rest of the scenario at once, so every run ends
            s.advance((steps - i) * step_seconds)
        report.steps = i
        if not receiver.is_up:
            receiver.start()
        receiver.script, receiver.delay = [], 0.0
        want = snapshot()
        caught_up("the end on stdout", want)
        receiver.wait_for(
            lambda: want <= {(e["data"]["id"], e["data"]["status"]) for e in receiver.events()},
            90,
            "the end at the webhook",
        )
        for n in slots:
            code = daemons[n].stop(signal.SIGTERM, timeout=30)
            if code != 0:
                report.crashes.append(f"replica process {n} exited {code}")
    finally:
        for d in daemons:
            d.kill()
        receiver.close()
    for d in daemons:
        for line in d.stderr:
            if "Traceback" in line or '"bug:' in line:
                report.crashes.append(line.strip()[:200])
    report.restarts, report.kills = len(kill_log), kill_log
    report.faults = Counter(s.stats()["faults_injected"])
    hook_events = [r["event"] for r in receiver.received]
    report.hook_attempts = len(receiver.attempts)
    tally(report, expected, [e for d in daemons for e in d.events], hook_events)
    _order_checks(report, db, daemons, hook_events)
    polls = log.by_run()
    report.fail, report.cadence = failover(kill_log, polls), sorted(cadence(polls))
    done = set(db.psql("SELECT run_id FROM run_watches WHERE done = 1").split())
    report.fail.never = [r for r in report.fail.never if r not in done]
    report.polls_by_process = log.by_process()
    report.seconds = time.monotonic() - started
    return report
