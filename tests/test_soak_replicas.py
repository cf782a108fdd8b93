"""The replica soak (in CI, bounded): 3 replicas on one PostgreSQL database lose nothing
through API faults, a flapping receiver and a SIGKILL every 10 s (6 of them, not the
issue's open-ended "every 10 s": about a minute of kills keeps the test near 90 s)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.pg import PgServer, pg  # noqa: F401  (the fixture)
from tests.soak_replicas import run_replica_soak
from tests.test_soak import write_report

BEGIN, END = "<!-- replica soak report: begin -->", "<!-- replica soak report: end -->"
LEASE = 3.0
MAX_INTERVAL = 1.0  # run_replica_soak's [poll] interval and max_interval


def test_replica_soak_loses_nothing(sim, tmp_path: Path, pg: PgServer) -> None:  # noqa: F811
    db = pg.database("soak_replicas")
    report = run_replica_soak(sim, tmp_path, db, replicas=3, runs=300, kills=6, lease=LEASE)
    if os.environ.get("SOAK_REPORT"):
        write_report(
            Path(os.environ["SOAK_REPORT"]),
            report.markdown("SOAK_REPORT=docs/reliability.md pytest tests/test_soak_replicas.py"),
            markers=(BEGIN, END),
        )
    assert report.restarts == 6
    assert sum(report.faults.values()) >= 40
    assert report.stdout_lost == []
    assert report.webhook_lost == []
    assert report.recorded_twice == 0
    assert report.ids_per_transition_max == 1
    assert report.order_violations == 0
    assert report.stdout_order_violations == 0
    assert report.crashes == []
    assert report.fail.never == []
    assert report.fail.owned  # the dead replicas held open watches
    # every open watch polled again within lease + interval of its owner's death, with room
    # for a machine short of CPU: the replica restarted at the kill is counted in the shares
    # as soon as it ticks, so it takes part of the dead one's watches as slowly as it starts,
    # and a taken watch waits its turn behind the replica's own backlog (the pace kept)
    pace = report.cadence[len(report.cadence) * 99 // 100]
    bound = 2 * (LEASE + MAX_INTERVAL) + pace
    assert max(report.fail.repoll) <= bound, sorted(report.fail.repoll)[-10:]
