"""Replicas on PostgreSQL: failover time, and the database's cost per poll.

    python bench/failover.py failover [--runs 150] [--kills 2]   # about 2 minutes
    python bench/failover.py cost [--runs 1000] [--seconds 30]   # about 2.5 minutes

`failover`: 3 `runstep-watcher run` processes share RUNS watches of the simulator (its
clock stopped: every run stays open and is polled at `[poll] interval = 1`). For each lease
(15 s, the default, then 3 s), KILLS times: SIGKILL one replica once the watches are
shared out, and time from its death to the first poll of each watch it polled last by
another process (the simulator notes who polled what when: tests/request_log.py); then
restart it and let the shares settle. The replacement starts only after the failover
(`--restart-at-once`: at the kill, as the soak does).

`cost`: RUNS runs changing over time (the simulator's real clock), polled at `interval
= 2`, stdout only; after a warm-up, SECONDS of: 3 replicas on PostgreSQL (the statements
and their execution time from `pg_stat_statements`, every replica's together), then 1
process on SQLite (the statements counted by a trace callback on its connection, the time
inside its execute calls; through a `sitecustomize` of this script's), divided by the run
polls the simulator answered in the window.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import SimHandle  # noqa: E402
from tests.pg import PgServer, pg_server  # noqa: E402
from tests.proc import Daemon  # noqa: E402
from tests.request_log import RequestLog, first_after, last_before, process_url  # noqa: E402
from watcher.simulator.scenario import generate_scenario  # noqa: E402

TRACE = """
import json, os, sqlite3, threading, time
_out = os.environ["RSW_SQLITE_TRACE"]
_n = {"statements": 0, "seconds": 0.0}
def _timed(name):
    method = getattr(sqlite3.Connection, name)
    def call(self, *args):
        t = time.perf_counter()
        try:
            return method(self, *args)
        finally:
            _n["seconds"] += time.perf_counter() - t
    return call
class _Timed(sqlite3.Connection):
    execute = _timed("execute")
    executemany = _timed("executemany")
    executescript = _timed("executescript")
    commit = _timed("commit")
_connect = sqlite3.connect
def connect(*args, **kwargs):
    kwargs.setdefault("factory", _Timed)
    conn = _connect(*args, **kwargs)
    conn.set_trace_callback(lambda _: _n.__setitem__("statements", _n["statements"] + 1))
    return conn
sqlite3.connect = connect
def _dump():
    while True:
        time.sleep(0.2)
        with open(_out + ".tmp", "w") as f:
            f.write(json.dumps({**_n, "at": time.monotonic()}))
        os.replace(_out + ".tmp", _out)
threading.Thread(target=_dump, daemon=True).start()
"""


def write_config(
    work: Path, n: int, base_url: str, watches: list[tuple[str, str]], state: str, poll: str
) -> Path:
    lines = [f'[api]\nbase_url = "{process_url(base_url, n)}"\n', f"[poll]\n{poll}\n"]
    lines.append(f"[state]\n{state}\n")
    lines += [f'[[watch]]\nthread_id = "{t}"\nrun_id = "{r}"\n' for t, r in watches]
    path = work / f"p{n}.toml"
    path.write_text("".join(lines))
    return path


def owners(db: PgServer) -> dict[str, int]:
    """Leases held now, by replica (nothing before the replicas made the schema)."""
    try:
        rows = db.psql(
            "SELECT owner, COUNT(*) FROM watch_leases WHERE owner IS NOT NULL"
            " AND expires_at > EXTRACT(EPOCH FROM now()) GROUP BY owner"
        )
    except subprocess.CalledProcessError:
        return {}
    return {o: int(c) for o, c in (line.split("|") for line in rows.splitlines() if line)}


def wait(what: str, done: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)  # a bench: polling the database is fine here


def failover(server: PgServer, runs: int, kills: int, lease: float, at_once: bool) -> list[float]:
    name = f"failover_{int(lease)}_{int(at_once)}"
    server.psql(f"CREATE DATABASE {name}")
    db = dataclasses.replace(server, dbname=name)
    log = RequestLog()
    spec = generate_scenario(runs=runs, seed=3, duration=600)
    sim = SimHandle(spec, wrap=log.wrap)
    watches = [(t.id, r.id) for t in spec.threads for r in t.runs]
    state = f'url = "{db.url}"\nlease = {lease:g}'
    poll = "interval = 1.0\nmax_interval = 1.0\nmax_concurrency = 32"
    daemons: list[Daemon] = []
    times: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:

        def start() -> int:
            cfg = write_config(Path(tmp), len(daemons), sim.base_url, watches, state, poll)
            daemons.append(Daemon("run", "--config", str(cfg), "--log-level", "warning"))
            return len(daemons) - 1

        def shared() -> bool:
            held = owners(db)
            return len(held) == 3 and sum(held.values()) == runs

        try:
            slots = [start() for _ in range(3)]
            for k in range(kills):
                wait("the watches shared out", shared, 120)
                time.sleep(2 * lease / 3)  # a renewal or two: the kill lands mid-lease
                victim = slots[k % 3]
                daemons[victim].kill()
                at = time.monotonic()
                if at_once:
                    slots[k % 3] = start()
                polls = log.by_run()
                mine = [
                    r
                    for r, ps in polls.items()
                    if (p := last_before(ps, at)) and p.process == victim
                ]

                def taken_over(
                    at: float = at, victim: int = victim, mine: list[str] = mine
                ) -> bool:
                    polls = log.by_run()
                    return all(first_after(polls[r], at, not_by=victim) for r in mine)

                wait("the dead replica's watches polled", taken_over, lease + 60)
                polls = log.by_run()
                gaps = [first_after(polls[r], at, not_by=victim).at - at for r in mine]  # type: ignore[union-attr]
                print(f"lease {lease:g} s: kill {k + 1}: {len(mine)} watches, {_spread(gaps)}")
                times += gaps
                if not at_once:
                    slots[k % 3] = start()
        finally:
            for d in daemons:
                d.kill()
            sim.close()
    return times


def _spread(values: list[float]) -> str:
    return (
        f"min {min(values):.2f} / median {statistics.median(values):.2f} / max {max(values):.2f} s"
    )


def polls_between(log: RequestLog, t0: float, t1: float) -> int:
    return sum(1 for ps in log.by_run().values() for p in ps if t0 <= p.at < t1)


def cost(
    server: PgServer, runs: int, seconds: float, warmup: float, replicas: int = 3
) -> dict[str, tuple[float, ...]]:
    out: dict[str, tuple[float, ...]] = {}
    poll = "interval = 2.0\nmax_interval = 10.0\nmax_concurrency = 32"
    for backend in ("postgresql", "sqlite"):
        log = RequestLog()
        spec = generate_scenario(runs=runs, seed=5, duration=3 * (warmup + seconds))
        sim = SimHandle(spec, manual_clock=False, wrap=log.wrap)
        watches = [(t.id, r.id) for t in spec.threads for r in t.runs]
        daemons: list[Daemon] = []
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            trace = work / "trace.json"
            try:
                if backend == "postgresql":
                    server.psql("CREATE DATABASE cost")
                    server.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                    db = dataclasses.replace(server, dbname="cost")
                    db.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                    for n in range(replicas):
                        cfg = write_config(
                            work, n, sim.base_url, watches, f'url = "{db.url}"', poll
                        )
                        daemons.append(
                            Daemon("run", "--config", str(cfg), "--log-level", "warning")
                        )
                else:
                    (work / "sitecustomize.py").write_text(TRACE)
                    state = f'path = "{work / "cost.db"}"'
                    cfg = write_config(work, 0, sim.base_url, watches, state, poll)
                    env = {"PYTHONPATH": str(work), "RSW_SQLITE_TRACE": str(trace)}
                    daemons.append(
                        Daemon("run", "--config", str(cfg), "--log-level", "warning", **env)
                    )
                time.sleep(warmup)  # a bench: the watches started, the first polls done
                if backend == "postgresql":
                    db.psql("SELECT pg_stat_statements_reset()")
                    before = (0.0, 0.0)
                else:
                    j = json.loads(trace.read_text())
                    before = (j["statements"], j["seconds"] * 1000)
                t0 = time.monotonic()
                time.sleep(seconds)
                t1 = time.monotonic()
                if backend == "postgresql":
                    row = db.psql(
                        "SELECT SUM(calls), SUM(total_exec_time) FROM pg_stat_statements"
                        " WHERE query NOT ILIKE '%pg_stat_statements%'"
                    ).strip()
                    after = tuple(float(x) for x in row.split("|"))
                    top = db.psql(
                        "SELECT calls, round(total_exec_time::numeric), left(regexp_replace("
                        "query, '\\s+', ' ', 'g'), 90) FROM pg_stat_statements"
                        " ORDER BY total_exec_time DESC LIMIT 6"
                    )
                    print("the statements that took longest (calls | ms | statement):")
                    print(top.rstrip())
                else:
                    j = json.loads(trace.read_text())
                    after = (j["statements"], j["seconds"] * 1000)
                polls = polls_between(log, t0, t1)
                statements, ms = after[0] - before[0], after[1] - before[1]
                out[backend] = (polls, statements, ms)
                print(
                    f"{backend}: {polls} run polls in {seconds:g} s, {statements:.0f} statements,"
                    f" {ms:.0f} ms: {statements / polls:.2f} statements and"
                    f" {ms / polls:.3f} ms per poll"
                )
            finally:
                for d in daemons:
                    if d.proc.poll() is None:
                        d.stop(signal.SIGTERM, 30)
                sim.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("what", choices=["failover", "cost"])
    p.add_argument("--runs", type=int)
    p.add_argument("--kills", type=int, default=2)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--warmup", type=float, default=15.0)
    p.add_argument("--restart-at-once", action="store_true")
    p.add_argument("--replicas", type=int, default=3, help="cost: PostgreSQL replicas")
    args = p.parse_args()
    started = time.monotonic()
    settings = "-c shared_preload_libraries=pg_stat_statements" if args.what == "cost" else ""
    gen = pg_server(settings)
    server = next(gen)
    try:
        if args.what == "failover":
            for lease in (15.0, 3.0):
                times = failover(server, args.runs or 150, args.kills, lease, args.restart_at_once)
                print(f"lease {lease:g} s, all kills: {len(times)} watches, {_spread(times)}")
        else:
            cost(server, args.runs or 1000, args.seconds, args.warmup, args.replicas)
    finally:
        gen.close()
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
