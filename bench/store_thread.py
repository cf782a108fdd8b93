"""Focused bench: CPU per poll of the daemon with the store in a worker thread vs a baseline.

    git archive <baseline commit> watcher | tar -x -C /tmp/baseline
    python bench/store_thread.py --baseline /tmp/baseline [--runs 200] [--seconds 25] [--rounds 2]

Each round runs the baseline tree and this tree one after the other against a fresh
`runstep-watcher simulate --generate RUNS` (seeded, the same workload), for SECONDS each,
and reads the daemon's CPU from the kernel (`wait4`) and its polls from the simulator.
Bounded: about rounds x 2 x (seconds + 3) s.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
PY = sys.executable


def one(tree: Path, runs: int, seconds: float, work: Path) -> tuple[float, int, int]:
    """(CPU seconds, run polls, events) of one daemon run."""
    sim = subprocess.Popen(
        [
            *(PY, "-m", "watcher", "simulate", "--generate", str(runs), "--seed", "1"),
            *("--duration", str(seconds * 0.8), "--log-level", "warning"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=HERE.parent,
    )
    try:
        assert sim.stdout is not None
        url = sim.stdout.readline().strip()
        control = url.removesuffix("/v1") + "/_sim"
        scenario = httpx.get(control + "/scenario").json()
        watches = [(t["id"], r) for t in scenario["threads"] for r in t["runs"]]
        for f in work.glob("b.db*"):
            f.unlink()
        cfg = work / "b.toml"
        lines = [f'[api]\nbase_url = "{url}"\n[poll]\ninterval = 1.0\n']
        lines.append(f'max_requests_per_second = 5000\n[state]\npath = "{work / "b.db"}"\n')
        lines += [f'[[watch]]\nthread_id = "{t}"\nrun_id = "{r}"\n' for t, r in watches]
        cfg.write_text("".join(lines))
        out = work / "out.jsonl"
        with out.open("w") as stdout:
            proc = subprocess.Popen(
                [PY, "-m", "watcher", "run", "--config", str(cfg), "--log-level", "error"],
                stdout=stdout,
                stderr=subprocess.DEVNULL,
                cwd=tree,
                env={**os.environ, "OPENAI_API_KEY": "sk-bench", "PYTHONPATH": str(tree)},
            )
            time.sleep(seconds)  # a bench's own cadence, not a test
            proc.send_signal(signal.SIGTERM)
            _, _, usage = os.wait4(proc.pid, 0)
            proc.returncode = 0
        stats = httpx.get(control + "/stats").json()
    finally:
        sim.terminate()
        sim.wait(10)
    events = len(out.read_text().splitlines())
    return usage.ru_utime + usage.ru_stime, int(stats["by_route"]["run"]), events


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", type=Path, required=True)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--seconds", type=float, default=25.0)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    totals = {"baseline": [0.0, 0, 0], "this tree": [0.0, 0, 0]}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for name, tree in (("baseline", args.baseline), ("this tree", HERE.parent)):
                cpu, polls, events = one(tree.resolve(), args.runs, args.seconds, Path(tmp))
                t = totals[name]
                t[0] += cpu
                t[1] += polls
                t[2] += events
                print(f"{name}: {cpu:.2f} s CPU, {polls} run polls, {events} events", flush=True)
    print("\n| tree | CPU s | run polls | events | CPU ms / poll |\n|---|---:|---:|---:|---:|")
    for name, (cpu, polls, events) in totals.items():
        print(f"| {name} | {cpu:.2f} | {polls} | {events} | {1000 * cpu / max(polls, 1):.3f} |")


if __name__ == "__main__":
    main()
