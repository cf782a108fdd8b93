"""The replica soak's report (tests/soak_replicas.py): the figures and their markdown."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from tests.request_log import Failover, Kill
from tests.soak import SoakReport


@dataclass
class ReplicaReport(SoakReport):
    replicas: int = 0
    lease: float = 0.0
    interval: float = 0.0
    max_interval: float = 0.0
    recorded_twice: int = 0  # event ids with more than one row in `events`
    stdout_order_violations: int = 0
    hook_attempts: int = 0
    polls_by_process: dict[int, int] = field(default_factory=dict)
    fail: Failover = field(default_factory=lambda: Failover([], [], []))
    kills: list[Kill] = field(default_factory=list)
    cadence: list[float] = field(default_factory=list)

    def markdown(self, command: str) -> str:
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items()))
        flaps = ", ".join(f"{k} {v}" for k, v in sorted(self.receiver_flaps.items()))
        split = " / ".join(str(v) for _, v in sorted(self.polls_by_process.items()))
        repoll = max(self.fail.repoll, default=0.0)
        bound = self.lease + self.max_interval
        within = sum(1 for x in self.fail.repoll if x <= bound)
        share = within / len(self.fail.repoll) if self.fail.repoll else 1.0
        c = self.cadence or [0.0]
        pace = f"{statistics.median(c):.2f} / {c[len(c) * 99 // 100]:.2f} / {c[-1]:.2f} s"
        rows = [
            ("replicas (`runstep-watcher run` processes) on one database", self.replicas),
            (
                "`[state] lease` / `[poll] interval`, `max_interval`",
                f"{self.lease:g} s / {self.interval:g} s, {self.max_interval:g} s",
            ),
            ("runs / objects (runs + steps)", f"{self.runs} / {self.objects}"),
            ("clock steps", self.steps),
            ("API faults injected, by kind", faults),
            ("webhook receiver flaps", flaps),
            ("replica SIGKILLs and restarts", self.restarts),
            ("observable transitions expected", self.expected),
            (
                "delivered on stdout (all replicas) / lost",
                f"{self.stdout_delivered} / {len(self.stdout_lost)}",
            ),
            (
                "delivered to the webhook (verified) / lost",
                f"{self.webhook_delivered} / {len(self.webhook_lost)}",
            ),
            (
                "duplicates on stdout / webhook (same id)",
                f"{self.stdout_duplicates} / {self.webhook_duplicates}",
            ),
            ("webhook requests (all answers)", self.hook_attempts),
            ("event ids recorded in two rows", self.recorded_twice),
            ("distinct ids per transition (max)", self.ids_per_transition_max),
            (
                "per-run order violations: webhook / a replica's stdout",
                f"{self.order_violations} / {self.stdout_order_violations}",
            ),
            (
                "kill to next poll, watches the dead replica polled last (n, min / median / max)",
                _spread(self.fail.owned),
            ),
            (
                "kill to next poll, every open watch (n, max)",
                f"{len(self.fail.repoll)}, {repoll:.2f} s",
            ),
            (f"... of which within lease + max_interval ({bound:g} s)", f"{within} ({share:.0%})"),
            ("open watches never polled again", len(self.fail.never)),
            ("gap between two polls of a run by one replica (median / p99 / max)", pace),
            ("run polls per process, in start order", split),
            ("crashes (tracebacks, bugs, bad exits)", len(self.crashes)),
        ]
        table = "\n".join(f"| {k} | {v} |" for k, v in rows)
        return f"""## Replicas on PostgreSQL

Measured by `{command}` ({self.seconds:.0f} s).

| figure | value |
|---|---|
{table}

A replica is killed every 10 s (round robin) and restarted at once under a new process
index (6 kills: the bound of a CI test; `bench/failover.py` measures the failover alone);
the simulator notes which process polled which run when (`tests/request_log.py`).
"Kill to next poll" runs from the moment the killed process is gone to the first GET of
each watch still open in the database by another process. Duplicates are redeliveries
under the same id (a SIGKILL before a delivery was marked, a receiver slower than the
webhook's timeout, a pending stdout line printed again by a starting replica).
"""


def _spread(values: list[float]) -> str:
    if not values:
        return "0"
    return (
        f"{len(values)}, {min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f} s"
    )
