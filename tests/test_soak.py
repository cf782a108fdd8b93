"""The bounded fault soak (in CI): nothing lost through faults, flaps and SIGKILLs."""

from __future__ import annotations

import os
from pathlib import Path

from tests.soak import run_soak

ROOT = Path(__file__).resolve().parents[1]


BEGIN, END = "<!-- soak report: begin -->", "<!-- soak report: end -->"


def write_report(path: Path, text: str, markers: tuple[str, str] = (BEGIN, END)) -> None:
    """Replace the soak's section of `path` (between its markers), keeping the rest."""
    begin, end = markers
    old = path.read_text() if path.exists() else ""
    if begin in old and end in old:
        head, _, rest = old.partition(begin)
        _, _, tail = rest.partition(end)
        path.write_text(f"{head}{begin}\n{text.rstrip()}\n{end}{tail}")
    else:
        path.write_text(f"{begin}\n{text.rstrip()}\n{end}\n{old}")


def test_fault_soak_loses_nothing(sim, tmp_path):
    report = run_soak(sim, tmp_path, runs=300, seed=7, kills=5, steps=40)
    if os.environ.get("SOAK_REPORT"):
        write_report(
            Path(os.environ["SOAK_REPORT"]),
            report.markdown("SOAK_REPORT=docs/reliability.md pytest tests/test_soak.py"),
        )
    assert report.restarts == 5
    assert sum(report.faults.values()) >= 40
    assert report.stdout_lost == []
    assert report.webhook_lost == []
    assert report.ids_per_transition_max == 1  # redeliveries share their id
    assert report.order_violations == 0
    assert report.crashes == []
    assert report.rss_end_kb <= report.rss_mid_kb * 1.2
