"""Benchmark: runstep-watcher against the naive SDK poller and a bare httpx loop.

    python bench/run.py                      # sizes 100, 1000, 10000; writes bench/results.md
    python bench/run.py --sizes 100 --duration 20   # a quick look

The simulator and the contender are pinned to a core each (taskset), so "polls per
CPU-second" is what one core sustains and neither steals the other's CPU.

Each contender runs alone against a fresh simulator (`runstep-watcher simulate`) serving the
same seeded workload; figures are taken in the same run on the same machine and reported
as ratios. CPU and peak RSS come from the kernel (wait4 rusage) of each contender process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
PY = sys.executable
WARMUP = 3.0
TERMINAL = {"completed", "failed", "cancelled", "expired", "incomplete"}


@dataclass
class Result:
    name: str
    runs: int
    cpu: float = 0.0
    rss_mb: float = 0.0
    requests: int = 0
    polls: int = 0
    observed: int = 0
    latencies: list[float] = field(default_factory=list)
    long_run_requests: int = 0
    long_run_transitions: int = 0
    missed_terminal: int = 0
    max_poll_gap: float = 0.0
    never_polled: int = 0
    seconds: float = 0.0
    interval: float = 1.0
    workload: float = 0.0
    waiting: bool = False  # the extra case: most runs waiting

    def pct(self, p: float) -> float | None:  # nearest-rank percentile
        if not self.latencies:
            return None
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]

    @property
    def cpu_per_1000_polls(self) -> float:
        return self.cpu / max(self.polls, 1) * 1000

    @property
    def requests_per_transition(self) -> float | None:
        return self.requests / self.observed if self.observed else None

    @property
    def long_requests_per_transition(self) -> float | None:
        if not self.long_run_transitions:
            return None
        return self.long_run_requests / self.long_run_transitions


def pinned(core: int, args: argparse.Namespace) -> list[str]:
    """Simulator on one core, contender on the other: neither steals the other's CPU."""
    if args.no_pin or (os.cpu_count() or 1) < 2 or shutil.which("taskset") is None:
        return []
    return ["taskset", "-c", str(core)]


def peak_rss_kb(pid: int) -> int:
    """The process's own high-water RSS (VmHWM). Not wait4's ru_maxrss: a forked child
    starts that figure from its parent's RSS, which would floor every contender at the
    size of this script."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def per_size(spec: str, size: int) -> float:
    """`100=1,1000=3` → the value for `size` (the largest key not above it), or a plain number."""
    if "=" not in spec:
        return float(spec)
    table = sorted((int(k), float(v)) for k, v in (x.split("=") for x in spec.split(",")))
    return next((v for k, v in reversed(table) if k <= size), table[0][1])


def long_runs(size: int) -> int:
    return max(3, size // 100)


def start_sim(
    args: argparse.Namespace, runs: int, duration: float
) -> tuple[subprocess.Popen[str], str]:
    cmd = [
        *pinned(1, args),
        PY,
        "-m",
        "watcher",
        "simulate",
        "--generate",
        str(runs),
        "--seed",
        str(args.seed),
        "--long-runs",
        str(long_runs(runs)),
        "--long-run-steps",
        str(args.long_run_steps),
        "--long-run-done",
        str(args.long_run_done),
        "--duration",
        str(duration),
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        raise RuntimeError(f"the simulator did not start: {url!r}")
    return proc, url


def read_lines(proc: subprocess.Popen[str], sink: list[tuple[float, str]]) -> threading.Thread:
    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            sink.append((time.time(), line))

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    return t


def contender_cmd(
    name: str,
    url: str,
    runs: list[tuple[str, str]],
    args: argparse.Namespace,
    seconds: float,
    workdir: Path,
    interval: float,
) -> list[str]:
    pin = pinned(0, args)
    if name == "runstep-watcher":
        cfg = workdir / "bench.toml"
        lines = [
            "[api]",
            f'base_url = "{url}"',
            "timeout = 30",
            "[poll]",
            f"interval = {interval}",
            f"max_interval = {args.max_interval}",
            f"max_requests_per_second = {args.rps}",
            f"max_concurrency = {args.concurrency}",
            "[retry]",
            "attempts = 5",
            "[state]",
            f'path = "{workdir / "bench.db"}"',
            "[log]",
            'level = "warning"',
        ]
        for thread_id, run_id in runs:
            lines += ["[[watch]]", f'thread_id = "{thread_id}"', f'run_id = "{run_id}"']
        cfg.write_text("\n".join(lines) + "\n")
        return [*pin, PY, "-m", "watcher", "run", "--config", str(cfg)]
    script = "naive_sdk.py" if name == "openai SDK loop" else "bare_httpx.py"
    cmd = [*pin, PY, str(HERE / script), url, json.dumps(runs), str(interval), str(seconds)]
    return [*cmd, str(args.sdk_limit)] if args.sdk_limit and script == "naive_sdk.py" else cmd


def run_one(
    name: str, size: int, args: argparse.Namespace, workdir: Path, workload: float, duration: float
) -> Result:
    interval = per_size(args.interval, size)
    sim, url = start_sim(args, size, workload)
    control = url.removesuffix("/v1") + "/_sim"
    try:
        scenario = httpx.get(control + "/scenario").json()
        runs = [(t["id"], r) for t in scenario["threads"] for r in t["runs"]]
        seconds = duration + args.tail
        for f in workdir.glob("bench.db*"):
            f.unlink()
        proc = subprocess.Popen(
            contender_cmd(name, url, runs, args, seconds, workdir, interval),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "OPENAI_API_KEY": "sk-bench"},
        )
        lines: list[tuple[float, str]] = []
        pump = read_lines(proc, lines)
        started = time.monotonic()
        started_wall = time.time()
        deadline = started + seconds
        signalled = False
        open_gap, stopped_wall = 0.0, 0.0
        peak_kb = 0
        while True:  # the benchmark's own cadence: it measures, it is not a test
            peak_kb = max(peak_kb, peak_rss_kb(proc.pid))
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                stopped_wall = stopped_wall or time.time()  # it may end by itself
                break
            if time.monotonic() >= deadline and not signalled:
                # a run not polled since long ago, seen while the contender still runs
                open_gap = httpx.get(control + "/stats", timeout=60).json()["open_poll_gap"]
                stopped_wall = time.time()
                proc.send_signal(signal.SIGTERM if name == "runstep-watcher" else signal.SIGINT)
                signalled = True
            time.sleep(0.2)
        proc.returncode = os.waitstatus_to_exitcode(status)
        pump.join(10)
        elapsed = time.monotonic() - started
        stats = httpx.get(control + "/stats", timeout=60).json()
        transitions = httpx.get(control + "/transitions", timeout=60).json()["transitions"]
    finally:
        sim.terminate()
        sim.wait(10)
    res = Result(
        name=name,
        runs=size,
        cpu=usage.ru_utime + usage.ru_stime,
        rss_mb=peak_kb / 1024,
        requests=stats["requests"],
        polls=stats["by_route"]["run"],
        max_poll_gap=max(stats["max_poll_gap"], open_gap),
        never_polled=size - stats["polled_runs"],
        seconds=elapsed,
        interval=interval,
        workload=workload,
    )
    changed_at = {(t["id"], t["status"]): t["at_unix"] for t in transitions}
    run_of = {t["id"]: t["run_id"] for t in transitions}
    steps_of = Counter(run_of[o] for o in run_of if o.startswith("step_"))
    long_ids = {run_id for run_id, _ in steps_of.most_common(long_runs(size))}  # others ≤ 12
    seen: set[tuple[str, str]] = set()
    for arrived, line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        data = obj.get("data", obj)
        pair = (data.get("id"), data.get("status"))
        if pair in seen or pair not in changed_at:
            continue
        seen.add(pair)
        # what was already there at the contender's start is first sight, not a transition
        if changed_at[pair] <= started_wall:
            continue
        res.observed += 1
        if run_of.get(pair[0]) in long_ids:
            res.long_run_transitions += 1
        # detection latency of changes made after a warm-up
        if changed_at[pair] > started_wall + WARMUP:
            res.latencies.append(max(0.0, arrived - changed_at[pair]))
    # a terminal status that stood for max_interval + 1 s before the stop and never came out
    due = stopped_wall - args.max_interval - 1.0
    if name != "bare httpx loop":
        res.missed_terminal = sum(
            1
            for t in transitions
            if t["status"] in TERMINAL and t["at_unix"] < due and (t["id"], t["status"]) not in seen
        )
    res.long_run_requests = sum(n for r, n in stats["by_run"].items() if r in long_ids)
    return res


def fmt(x: float | None, unit: str = "", digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}{unit}"


def ratio(a: float | None, b: float | None, target: float | None = None) -> str:
    if not a or not b:
        return "–"
    return f"{a / b:.2f}×" + ("" if target is None else f" {mark(a / b <= target)}")


def table(results: list[Result]) -> str:
    out = [
        "| runs | started and ended over | interval | contender | p50 latency | p99 latency | "
        "requests / transition | "
        "… on runs > 300 steps | CPU s / 1,000 polls | polls / s on one core | CPU total | "
        "peak RSS | RSS / run | max poll gap | runs never polled | terminal statuses missed |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        bare = r.name == "bare httpx loop"
        out.append(
            f"| {r.runs:,} | {r.workload:,.0f} s | {r.interval:g} s | {r.name} | "
            f"{fmt(r.pct(50), ' s')} | "
            f"{fmt(r.pct(99), ' s')} | "
            f"{fmt(r.requests_per_transition)} | {fmt(r.long_requests_per_transition)} | "
            f"{fmt(r.cpu_per_1000_polls, '', 3)} | {1000 / max(r.cpu_per_1000_polls, 1e-9):,.0f} | "
            f"{fmt(r.cpu, ' s', 1)} | {r.rss_mb:.0f} MB | "
            f"{r.rss_mb * 1024 / r.runs:.1f} KB | {fmt(r.max_poll_gap, ' s', 1)} | "
            f"{r.never_polled:,} | {'–' if bare else f'{r.missed_terminal:,}'} |"
        )
    return "\n".join(out)


def ratios(results: list[Result], max_interval: float) -> str:
    out = [
        "| runs | over | CPU/poll vs bare httpx (≤ 1.5×) | total CPU vs SDK loop (≤ 0.25×) | "
        "requests/transition on runs > 300 steps vs SDK loop (≤ 0.5×) | all runs vs SDK loop | "
        "p99 latency (≤ interval + 0.25 s) | every run polled within max_interval + 1 s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    by = {(r.runs, r.workload, r.name): r for r in results}
    for size, span in sorted({(r.runs, r.workload) for r in results}):
        w = by.get((size, span, "runstep-watcher"))
        sdk = by.get((size, span, "openai SDK loop"))
        bare = by.get((size, span, "bare httpx loop"))
        if w is None:
            continue
        cpu_poll = ratio(w.cpu_per_1000_polls, bare.cpu_per_1000_polls if bare else None, 1.5)
        long_rpt = ratio(
            w.long_requests_per_transition,
            sdk.long_requests_per_transition if sdk else None,
            0.5,
        )
        all_rpt = ratio(w.requests_per_transition, sdk.requests_per_transition if sdk else None)
        p99 = w.pct(99)
        latency = "–" if p99 is None else f"{p99:.2f} s"
        if p99 is not None and size <= 1000 and not w.waiting:  # set for 1,000 *active* runs
            latency += f" {mark(p99 <= w.interval + 0.25)}"
        starved = w.never_polled > 0 or w.max_poll_gap > max_interval + 1.0
        polled = f"{w.max_poll_gap:.1f} s {mark(not starved)}"
        total = ratio(w.cpu, sdk.cpu if sdk else None, 0.25)
        out.append(
            f"| {size:,} | {span:,.0f} s | {cpu_poll} | {total} "
            f"| {long_rpt} | {all_rpt} | {latency} | {polled} |"
        )
    return "\n".join(out)


def mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def plot(results: list[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = {"runstep-watcher": "C0", "openai SDK loop": "C1", "bare httpx loop": "C2"}
    for name, color in colors.items():
        mine = [r for r in results if r.name == name]
        active = sorted((r for r in mine if r.workload <= 60), key=lambda r: r.runs)
        others = [r for r in mine if r.workload > 60]  # slow or waiting runs: another workload
        for rs, style, label in ((active, "-", "active runs"), (others, ":", "slow runs")):
            if not rs:
                continue
            xs = [r.runs for r in rs]
            if name != "bare httpx loop":
                ax1.plot(
                    xs,
                    [r.pct(99) or 0 for r in rs],
                    marker="o",
                    linestyle=style,
                    color=color,
                    label=f"{name}, p99, {label}",
                )
            ax2.plot(
                xs,
                [r.cpu_per_1000_polls for r in rs],
                marker="o",
                linestyle=style,
                color=color,
                label=f"{name}, {label}",
            )
    for r in results:
        if r.name == "runstep-watcher" and r.pct(99) is not None:
            ax1.annotate(
                f"interval {r.interval:g} s",
                (r.runs, r.pct(99) or 0),
                textcoords="offset points",
                xytext=(4, -12),
                fontsize=7,
            )
    for ax, title, ylabel in (
        (ax1, "Detection latency, p99", "seconds"),
        (ax2, "CPU per 1,000 polls (one core)", "CPU seconds"),
    ):
        ax.set_xscale("log")
        ax.set_xlabel("watched runs")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def report(header: str, results: list[Result], args: argparse.Namespace) -> str:
    return (
        header
        + "\n\n"
        + table(results)
        + "\n\n## Targets (ratios from the same run)\n\n"
        + ratios(results, args.max_interval)
        + "\n"
    )


def save(results: list[Result], path: Path) -> None:
    rows = [asdict(r) | {"latencies": [round(x, 4) for x in r.latencies]} for r in results]
    path.write_text(json.dumps(rows) + "\n")


def load(path: Path) -> list[Result]:
    return [Result(**r) for r in json.loads(path.read_text())]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", default="100,1000,10000")
    p.add_argument("--contenders", default="runstep-watcher,openai SDK loop,bare httpx loop")
    p.add_argument("--duration", type=float, default=40.0, help="seconds each contender watches")
    p.add_argument("--tail", type=float, default=10.0, help="… and then some more")
    p.add_argument(
        "--workload",
        default="100=40,10000=1800",
        help="seconds over which the runs start and end, by size: at 10,000 most runs wait",
    )
    p.add_argument("--interval", default="100=1,1000=3", help="poll interval, by size")
    p.add_argument(
        "--waiting", type=int, default=1000, help="also this many runs, most waiting (0: no)"
    )
    p.add_argument("--waiting-over", type=float, default=600.0, help="… started over this span")
    p.add_argument(
        "--waiting-for",
        type=float,
        default=120.0,
        help="… watched this long: past the first max_interval, to the steady state",
    )
    p.add_argument("--max-interval", type=float, default=30.0)
    p.add_argument("--rps", type=float, default=5000.0, help="runstep-watcher's request budget")
    p.add_argument("--concurrency", type=int, default=8, help="runstep-watcher's (its default)")
    p.add_argument("--long-run-steps", type=int, default=330)
    p.add_argument("--long-run-done", type=int, default=300, help="… of them done at start")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--sdk-limit", type=int, help="page size of the SDK loop (default: the SDK's, 20)"
    )
    p.add_argument("--no-pin", action="store_true", help="do not pin simulator and contender")
    p.add_argument(
        "--skip-sdk-above",
        type=int,
        default=1000,
        help="the SDK loop (a task per run) is not run above this many runs",
    )
    p.add_argument("--out", type=Path, default=HERE / "results.md")
    p.add_argument("--plot", type=Path, default=HERE / "results.png")
    p.add_argument("--no-plot", action="store_true", help="no plot (matplotlib not needed)")
    p.add_argument(
        "--replot", action="store_true", help="only redraw the plot from the last results.json"
    )
    args = p.parse_args()
    if args.replot:  # tables and plot again from the saved results, the header kept
        results = load(args.out.with_suffix(".json"))
        header = args.out.read_text().split("\n\n| runs")[0]
        args.out.write_text(report(header, results, args))
        plot(results, args.plot)
        return
    workdir = HERE / ".work"
    workdir.mkdir(exist_ok=True)
    results: list[Result] = []
    cases = [
        (int(s), per_size(args.workload, int(s)), args.duration) for s in args.sizes.split(",")
    ]
    if args.waiting:  # the same number of runs, most of them waiting: what adapting saves
        cases.append((args.waiting, args.waiting_over, args.waiting_for))
    for size, span, duration in cases:
        for name in args.contenders.split(","):
            if name != "runstep-watcher" and size > args.skip_sdk_above:
                continue
            print(f"… {size} runs over {span:.0f} s: {name}", file=sys.stderr, flush=True)
            result = run_one(name, size, args, workdir, span, duration)
            result.waiting = bool(args.waiting) and (size, span, duration) == cases[-1]
            results.append(result)
    pin = "simulator and contender pinned to a core each" if pinned(0, args) else "not pinned"
    workloads = ", ".join(
        f"{size:,} runs started and ended over {span:,.0f} s, watched for {secs:.0f} s"
        for size, span, secs in cases
    )
    command = " ".join(["python", "bench/run.py", *sys.argv[1:]])
    header = (
        f"# Benchmark results\n\nMeasured by `{command}` on {os.cpu_count()} cores ({pin}), "
        f"seed {args.seed}. Each contender alone (+{args.tail:.0f} s after its window) against "
        f"a fresh simulator serving the same seeded runs: {workloads}. "
        f"A run starts queued, works through 1–12 steps and ends; 1% of runs (at least 3) "
        f"are long: {args.long_run_steps} steps, {args.long_run_done} of them done when the "
        "watch begins. Transitions count changes made while the contender ran; latency, "
        f"those after a {WARMUP:.0f} s warm-up.\n\n"
    )
    text = report(header.rstrip("\n"), results, args)
    args.out.write_text(text)
    save(results, args.out.with_suffix(".json"))
    if not args.no_plot:
        plot(results, args.plot)
    print(text)


if __name__ == "__main__":
    main()
