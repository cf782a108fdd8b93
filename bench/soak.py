"""The longer fault soak: more runs, more steps, more SIGKILLs than the CI one.

python bench/soak.py --runs 1000 --steps 200 --kills 20 --report docs/reliability-long.md
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import SimHandle  # noqa: E402
from tests.soak import run_soak  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=1000)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--report", type=Path, default=ROOT / "docs" / "reliability-long.md")
    args = p.parse_args()
    handles: list[SimHandle] = []

    def sim(scenario: object) -> SimHandle:
        handle = SimHandle(scenario, manual_clock=True)  # type: ignore[arg-type]
        handles.append(handle)
        return handle

    try:
        with tempfile.TemporaryDirectory() as tmp:
            report = run_soak(
                sim, Path(tmp), runs=args.runs, seed=args.seed, kills=args.kills, steps=args.steps
            )
    finally:
        for h in handles:
            h.close()
    command = " ".join(["python bench/soak.py", *sys.argv[1:]])
    args.report.write_text(report.markdown(command))
    print(report.markdown(command))
    failed = report.stdout_lost or report.webhook_lost or report.crashes or report.order_violations
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
