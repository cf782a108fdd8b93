"""Which process polled which run when: an ASGI wrapper around the simulator.

Each daemon process N is given the base URL `…/pN/v1`; the wrapper strips `/pN` and notes
(monotonic time, N, run id) for every GET of a run (`/v1/threads/T/runs/R`), the poll that
reads a run's status. The time is the test process's `time.monotonic()`, the clock its
SIGKILLs are timed on, so "kill to the next poll of each watch" is a subtraction.
"""

from __future__ import annotations

import bisect
import itertools
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

__all__ = ["Poll", "RequestLog", "process_url"]

_PREFIX = re.compile(r"/p([0-9]+)(?=/v1/)")
_RUN = re.compile(r"/v1/threads/[^/]+/runs/([^/]+)")


def process_url(base_url: str, n: int) -> str:
    """The simulator's base URL as process `n` is to use it."""
    return base_url.removesuffix("/v1") + f"/p{n}/v1"


@dataclass(frozen=True, slots=True)
class Poll:
    at: float  # time.monotonic() when the request reached the simulator
    process: int


class RequestLog:
    """Wraps the simulator app (`SimHandle(..., wrap=log.wrap)`); thread-safe reads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._polls: list[tuple[float, int, str]] = []

    def wrap(self, app: Any) -> Any:
        async def logged(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and (m := _PREFIX.match(scope["path"])):
                path = scope["path"][m.end() :]
                scope = {**scope, "path": path, "raw_path": path.encode()}
                run = _RUN.fullmatch(path)
                if run and scope["method"] == "GET":
                    with self._lock:
                        self._polls.append((time.monotonic(), int(m[1]), run[1]))
            await app(scope, receive, send)

        return logged

    def by_run(self) -> dict[str, list[Poll]]:
        """Every run's polls, in time order."""
        with self._lock:
            polls = sorted(self._polls)
        out: dict[str, list[Poll]] = defaultdict(list)
        for at, n, run in polls:
            out[run].append(Poll(at, n))
        return out

    def by_process(self) -> dict[int, int]:
        with self._lock:
            counts: dict[int, int] = defaultdict(int)
            for _, n, _ in self._polls:
                counts[n] += 1
        return dict(counts)


def last_before(polls: list[Poll], at: float) -> Poll | None:
    i = bisect.bisect_left([p.at for p in polls], at)
    return polls[i - 1] if i else None


def first_after(polls: list[Poll], at: float, *, not_by: int) -> Poll | None:
    i = bisect.bisect_right([p.at for p in polls], at)
    return next((p for p in polls[i:] if p.process != not_by), None)


@dataclass(frozen=True, slots=True)
class Kill:
    at: float  # time.monotonic() once the SIGKILLed process is gone
    process: int
    open: frozenset[str]  # runs whose watch was not done then (read from the database)


@dataclass
class Failover:
    """Kill to the next poll by another process: of the watches the dead process polled
    last (`owned`: its own, with leases), and of every watch still open (`repoll`)."""

    owned: list[float]
    repoll: list[float]
    never: list[str]  # open at a kill, never polled again by another process


def failover(kills: list[Kill], polls: dict[str, list[Poll]]) -> Failover:
    out = Failover([], [], [])
    for kill in kills:
        for run in sorted(kill.open):
            mine = polls.get(run, [])
            nxt = first_after(mine, kill.at, not_by=kill.process)
            if nxt is None:
                out.never.append(run)
                continue
            out.repoll.append(nxt.at - kill.at)
            last = last_before(mine, kill.at)
            if last is not None and last.process == kill.process:
                out.owned.append(nxt.at - kill.at)
    return out


def cadence(polls: dict[str, list[Poll]]) -> list[float]:
    """The gaps between two polls of a run in a row by the same process: the pace the
    replicas keep (on a machine short of CPU, longer than `[poll] interval`)."""
    return [
        b.at - a.at
        for mine in polls.values()
        for a, b in itertools.pairwise(mine)
        if a.process == b.process
    ]
