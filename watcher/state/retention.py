"""Pruning the state file: what finished longer ago than `[state] retention` goes.

Goes: the objects (last statuses) of runs whose watch ended, the watches of those runs
(except the ones the state still needs, below), the objects of watches removed, and
events no sink still needs. Stays: dead letters and pending deliveries (until delivered,
replayed or purged), config watches still in the config (their row says "done", so a
restart does not report the run again), and the runs a thread watch has found (its memory
of what it has seen; they go with the thread watch).

Each batch is one short transaction: the caller yields between batches, so pruning never
holds the database for long.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence

__all__ = ["BATCH", "KEPT_SOURCES", "prune"]

BATCH = 100
#: Watches whose row stays once their run is pruned (see the module docstring).
KEPT_SOURCES = ("config", "thread", "ignored")


Statement = tuple[str, Sequence[Sequence[object]]]


def _in_tx(db: sqlite3.Connection, *statements: Statement) -> int:
    """Run each statement once per row, all in one transaction; the rows changed."""
    db.execute("BEGIN IMMEDIATE")
    try:
        count = sum(db.execute(sql, row).rowcount for sql, rows in statements for row in rows)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return count


def prune(db: sqlite3.Connection, cutoff: float, *, batch: int = BATCH) -> Iterator[int]:
    """Delete what finished before `cutoff` (unix time); yield the rows deleted by each
    batch (one transaction each). A run's `done_at` is cleared once its objects are gone."""
    while runs := db.execute(
        "SELECT thread_id, run_id, source FROM run_watches"
        " WHERE done = 1 AND done_at < ? ORDER BY done_at LIMIT ?",
        (cutoff, batch),
    ).fetchall():
        yield _in_tx(
            db,
            (
                "DELETE FROM objects WHERE thread_id = ? AND run_id = ?",
                [(t, r) for t, r, _ in runs],
            ),
            (
                "UPDATE run_watches SET done_at = NULL WHERE thread_id = ? AND run_id = ?",
                [(t, r) for t, r, s in runs if s in KEPT_SOURCES],
            ),
            (
                "DELETE FROM run_watches WHERE thread_id = ? AND run_id = ?",
                [(t, r) for t, r, s in runs if s not in KEPT_SOURCES],
            ),
        )
    # objects of watches removed (by the control API, a reload or a 404), a slice of the
    # objects index at a time; checked again at the delete (a watch may come back meanwhile)
    last: tuple[str, str] = ("", "")
    while runs := db.execute(
        "SELECT DISTINCT thread_id, run_id FROM objects WHERE (thread_id, run_id) > (?, ?)"
        " ORDER BY thread_id, run_id LIMIT ?",
        (*last, batch * 10),
    ).fetchall():
        last = runs[-1]
        yield _in_tx(
            db,
            (
                "DELETE FROM objects WHERE thread_id = ?1 AND run_id = ?2 AND NOT EXISTS"
                " (SELECT 1 FROM run_watches WHERE thread_id = ?1 AND run_id = ?2)",
                runs,
            ),
        )
    # events that no sink needs any more (recorded when no sink was configured)
    after = 0
    while seqs := db.execute(
        "SELECT seq FROM events WHERE seq > ? AND created_at < ? ORDER BY seq LIMIT ?",
        (after, cutoff, batch),
    ).fetchall():
        after = seqs[-1][0]
        yield _in_tx(
            db,
            (
                "DELETE FROM events WHERE seq = ? AND NOT EXISTS"
                " (SELECT 1 FROM deliveries WHERE deliveries.seq = events.seq)",
                seqs,
            ),
        )
