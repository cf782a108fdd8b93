"""Benchmark: two versions of runstep-watcher, side by side on the same machine.

    python bench/versions.py                           # 39dbb77 against this checkout
    python bench/versions.py --old 39dbb77 --new HEAD  # two revisions
    python bench/versions.py --sizes 100 --duration 10 --rounds 1   # a quick check

`bench/run.py`'s runstep-watcher contender only, for each version in turn at each size,
interleaved old, new, new, old, … (machine noise, and its drift, hits both); writes
bench/versions.md: per size, each version's p50/p99 detection latency, requests per
transition, CPU seconds per 1,000 polls and peak RSS (pooled over the rounds), and the
new/old ratios.

A revision is unpacked with `git archive` under /tmp (no worktree registered in the repo)
and gets a throwaway virtualenv there whose path puts that tree's `watcher` first, then
this interpreter's site-packages: both versions run on the same libraries, so the ratios
are our code's. `--new` defaults to this checkout as it is (with this interpreter). Both
versions are driven by this checkout's bench/run.py (its contender and simulator are the
version's own: `python -m watcher` under the version's interpreter).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import sysconfig
import tempfile
import venv
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = Path(tempfile.gettempdir()) / "runstep-watcher-versions"
TARGET = 1.10  # "within 10%": a figure may be at most this much worse than the old one


@dataclass
class Version:
    label: str  # the revision as given, or "this checkout"
    python: str
    cwd: Path  # `python -m watcher` imports from the working directory first: the version's


@dataclass
class Pooled:
    """One version at one size, over all its rounds."""

    latencies: list[float] = field(default_factory=list)
    requests: int = 0
    observed: int = 0
    cpu: float = 0.0
    polls: int = 0
    rss_mb: float = 0.0
    cpu_per_round: list[float] = field(default_factory=list)

    def add(self, row: dict[str, Any]) -> None:
        self.latencies += row["latencies"]
        self.requests += row["requests"]
        self.observed += row["observed"]
        self.cpu += row["cpu"]
        self.polls += row["polls"]
        self.rss_mb = max(self.rss_mb, row["rss_mb"])
        self.cpu_per_round.append(row["cpu"] / max(row["polls"], 1) * 1000)

    def figures(self) -> dict[str, float | None]:
        xs = sorted(self.latencies)

        def pct(p: float) -> float | None:  # nearest rank, as bench/run.py
            return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else None

        return {
            "p50 latency (s)": pct(50),
            "p99 latency (s)": pct(99),
            "requests / transition": self.requests / self.observed if self.observed else None,
            "CPU s / 1,000 polls": self.cpu / max(self.polls, 1) * 1000,
            "peak RSS (MB)": self.rss_mb,
        }


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True)
    return done.stdout


def checkout() -> str:
    """This checkout, named by its commit (and whether it has uncommitted changes)."""
    sha = git("rev-parse", "--short", "HEAD").strip()
    dirty = git("status", "--porcelain", "--untracked-files=no").strip()
    return f"this checkout, {sha}" + (" with uncommitted changes" if dirty else "")


def prepare(rev: str) -> Version:
    """`rev`'s tree and a virtualenv for it under /tmp (kept: a second run reuses them)."""
    sha = git("rev-parse", "--verify", f"{rev}^{{commit}}").strip()
    home = CACHE / sha[:12]
    tree, env = home / "tree", home / "venv"
    if not (tree / "watcher" / "__main__.py").exists():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", sha], cwd=ROOT, check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    python = env / "bin" / "python"
    if not python.exists():
        venv.EnvBuilder(with_pip=False, clear=True).create(env)
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # the version's tree first, then this interpreter's libraries (not its editable watcher:
    # the .pth files of a directory named in a .pth file are not read)
    here_libs = sysconfig.get_paths()["purelib"]
    Path(purelib, "runstep_watcher_version.pth").write_text(f"{tree}\n{here_libs}\n")
    found = subprocess.run(
        [str(python), "-c", "import watcher; print(watcher.__file__)"],
        cwd=tree,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not found.startswith(str(tree)):
        raise SystemExit(f"{rev}: its interpreter imports watcher from {found}, not {tree}")
    return Version(rev, str(python), tree)


def run_once(version: Version, size: int, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One bench/run.py of the runstep-watcher contender at one size: its result row."""
    cmd = [
        version.python,
        str(HERE / "run.py"),
        "--contenders",
        "runstep-watcher",
        "--sizes",
        str(size),
        "--duration",
        str(args.duration),
        "--waiting",
        "0",
        "--seed",
        str(args.seed),
        "--out",
        str(out),
        "--no-plot",
        *(["--no-pin"] if args.no_pin else []),
    ]
    print(f"… {size} runs: {version.label}", file=sys.stderr, flush=True)
    subprocess.run(cmd, cwd=version.cwd, check=True, stdout=subprocess.DEVNULL)
    [row] = json.loads(out.with_suffix(".json").read_text())
    return dict(row)


def fmt(x: float | None, digits: int) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def report(
    command: str, old: Version, new: Version, pooled: dict[tuple[int, str], Pooled], args: Any
) -> str:
    digits = {"p50 latency (s)": 2, "p99 latency (s)": 2, "requests / transition": 2}
    digits["CPU s / 1,000 polls"] = 3
    names = list(Pooled().figures())
    out = [
        "# runstep-watcher against an earlier version (issue 11: figures within 10%)",
        "",
        f"Measured by `{command}`: bench/run.py's runstep-watcher contender alone against a",
        f"fresh simulator, seed {args.seed}, each size watched for {args.duration:g} s, "
        f"{args.rounds} round(s) interleaved (old, new, new, old, …) so that machine noise",
        "and its drift hit both; latencies pooled over the rounds, CPU and requests summed,",
        "RSS the peak. Each round's CPU ratio (new/old, the two runs side by side) shows how",
        "much of a difference is noise on this machine.",
        f"Old: `{old.label}`; new: `{new.label}`. Ratio new/old; ✓ when at most "
        f"{TARGET:.2f}× (lower is better for every figure).",
        "",
    ]
    for size in args.sizes:
        a, b = pooled[(size, "old")], pooled[(size, "new")]
        fa, fb = a.figures(), b.figures()
        out += [
            f"## {size:,} runs",
            "",
            "| version | " + " | ".join(names) + " | CPU s / 1,000 polls by round |",
            "|---|" + "---:|" * (len(names) + 1),
        ]
        for label, f, p in (("old", fa, a), ("new", fb, b)):
            rounds = ", ".join(f"{x:.3f}" for x in p.cpu_per_round)
            cells = " | ".join(fmt(f[n], digits.get(n, 1)) for n in names)
            out.append(f"| {label} | {cells} | {rounds} |")
        cells = []
        for n in names:
            x, y = fa[n], fb[n]
            cells.append(f"{y / x:.2f}× {'✓' if y / x <= TARGET else '✗'}" if x and y else "–")
        by_round = [y / x for x, y in zip(a.cpu_per_round, b.cpu_per_round, strict=True)]
        spread = ", ".join(f"{r:.2f}×" for r in by_round)
        out += [
            "| new/old | " + " | ".join(cells) + f" | {spread} (median {median(by_round):.2f}×) |",
            "",
        ]
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--old", default="39dbb77", help="the earlier revision (default: before #11)")
    p.add_argument("--new", help="the later revision (default: this checkout as it is)")
    p.add_argument("--sizes", default="100,1000")
    p.add_argument("--duration", type=float, default=40.0, help="seconds each run is watched")
    p.add_argument("--rounds", type=int, default=2, help="old, new pairs at each size")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--no-pin", action="store_true", help="do not pin simulator and contender")
    p.add_argument("--out", type=Path, default=HERE / "versions.md")
    args = p.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    old = prepare(args.old)
    new = prepare(args.new) if args.new else Version(checkout(), sys.executable, ROOT)
    pooled = {(s, v): Pooled() for s in args.sizes for v in ("old", "new")}
    with tempfile.TemporaryDirectory(prefix="versions-") as tmp:
        pair = (("old", old), ("new", new))
        for i in range(args.rounds):
            for size in args.sizes:  # old, new then new, old: a drift cancels out in pairs
                for label, version in pair if i % 2 == 0 else pair[::-1]:
                    out = Path(tmp) / f"{label}-{size}-{i}.md"
                    pooled[(size, label)].add(run_once(version, size, args, out))
    command = " ".join(["python", "bench/versions.py", *sys.argv[1:]])
    text = report(command, old, new, pooled, args)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
