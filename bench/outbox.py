"""The webhook outbox with a backlog: what one dispatch turn costs, against the old queries.

    python bench/outbox.py [--pending 100000] [--repeat 50]

For 1,000 and 100,000 runs, a state file is filled with `--pending` pending webhook
deliveries, in two states: every head due (events waiting for a slot) and every head failing
(an outage backlog: each run's oldest event scheduled 5 minutes ahead). The same file is
copied and stripped to the schema before the heads table (no heads, no triggers, none of
the new indexes): the baseline, read with the queries of that version. Timed, median of
`--repeat`: `due_heads` (limit 8, the default concurrency), `next_due`, delivering one head
(`mark_delivered`), the queue depth, and a dispatch turn as the sink's loop does it
(due heads, one delivery, next due; the old loop also counted the queue every turn), and
the write path the triggers add to (an event recorded for stdout and the webhook, then
stdout's delivery marked).
Bounded: about a minute on a 2-core machine.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from watcher.delivery.webhook import RELEASE_BATCH, SINK
from watcher.state.store import Store

OLD_DUE_HEADS = (
    "SELECT e.seq, e.event_id, e.thread_id, e.run_id, e.type, e.body, e.created_at,"
    " d.state, d.attempts, d.next_attempt_at, d.deadline, d.last_error"
    " FROM deliveries d JOIN events e ON e.seq = d.seq"
    " WHERE d.seq IN (SELECT MIN(d2.seq) FROM deliveries d2 JOIN events e2"
    "   ON e2.seq = d2.seq WHERE d2.sink = ? AND d2.state = 'pending'"
    "   GROUP BY e2.thread_id, e2.run_id)"
    " AND d.sink = ? AND d.next_attempt_at <= ? ORDER BY d.seq LIMIT ?"
)
OLD_NEXT_DUE = "SELECT MIN(next_attempt_at) FROM deliveries WHERE sink = ? AND state = 'pending'"
DEPTH = "SELECT state, COUNT(*) FROM deliveries WHERE sink = ? GROUP BY state"
NOW = 1_780_000_000.0
BODY = '{"id":"evt","object":"event","type":"thread.run.step.completed","data":{}}'


def fill(path: Path, runs: int, pending: int, failing: bool) -> None:
    """`pending` events round-robin over `runs` runs, each with a pending webhook delivery."""
    store = Store(path)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO events (seq, event_id, thread_id, run_id, type, body, created_at)"
        " VALUES (?, ?, 'thread_b', ?, 'thread.run.step.completed', ?, ?)",
        ((i, f"evt_{i:032x}", f"run_{i % runs}", BODY, int(NOW)) for i in range(1, pending + 1)),
    )
    db.executemany(
        "INSERT INTO deliveries (seq, sink, deadline) VALUES (?, ?, ?)",
        ((i, SINK, NOW + 259200) for i in range(1, pending + 1)),
    )
    if failing:
        db.execute(
            "UPDATE deliveries SET attempts = 2, next_attempt_at = ? WHERE seq IN"
            " (SELECT seq FROM outbox_heads WHERE sink = ?)",
            (NOW + 300, SINK),
        )
    db.execute("COMMIT")
    db.close()
    store.close()


def strip_to_old_schema(src: Path, dst: Path) -> None:
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    db = sqlite3.connect(dst, isolation_level=None)
    triggers = db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()
    for (name,) in triggers:
        db.execute(f"DROP TRIGGER {name}")
    db.execute("DROP TABLE outbox_heads")
    db.execute("DROP TABLE outbox_counts")
    db.execute("DROP INDEX deliveries_seq")
    db.execute("DROP INDEX deliveries_state")
    db.execute("VACUUM")
    db.close()


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


class Old:
    """The queries of the version before the heads table, on a file of that schema."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA synchronous = NORMAL")  # as the Store sets it
        self.heads: list[int] = []

    def due_heads(self) -> list[int]:
        rows = self.db.execute(OLD_DUE_HEADS, (SINK, SINK, NOW, 8)).fetchall()
        return [r[0] for r in rows]

    def next_due(self) -> object:
        return self.db.execute(OLD_NEXT_DUE, (SINK,)).fetchone()

    def depth(self) -> object:
        return self.db.execute(DEPTH, (SINK,)).fetchall()

    def deliver(self, seq: int) -> None:  # Store.mark_delivered's statements, unchanged
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute("DELETE FROM deliveries WHERE sink = ? AND seq = ?", (SINK, seq))
        self.db.execute(
            "DELETE FROM events WHERE seq = ? AND NOT EXISTS"
            " (SELECT 1 FROM deliveries WHERE deliveries.seq = events.seq)",
            (seq,),
        )
        self.db.execute("COMMIT")


def write_one(db: sqlite3.Connection, seq: int, run: str) -> None:
    """What a detected transition costs the outbox: its event with a delivery for stdout
    and one for the webhook (one transaction), then stdout's marked delivered (another)."""
    db.execute("BEGIN IMMEDIATE")
    db.execute(
        "INSERT INTO events (seq, event_id, thread_id, run_id, type, body, created_at)"
        " VALUES (?, ?, 'thread_b', ?, 'thread.run.step.completed', ?, ?)",
        (seq, f"evt_{seq:032x}", run, BODY, int(NOW)),
    )
    db.executemany(
        "INSERT INTO deliveries (seq, sink, deadline) VALUES (?, ?, ?)",
        [(seq, "stdout", None), (seq, SINK, NOW + 259200)],
    )
    db.execute("COMMIT")
    db.execute("BEGIN IMMEDIATE")
    db.execute("DELETE FROM deliveries WHERE sink = 'stdout' AND seq = ?", (seq,))
    db.execute(
        "DELETE FROM events WHERE seq = ? AND NOT EXISTS"
        " (SELECT 1 FROM deliveries WHERE deliveries.seq = events.seq)",
        (seq,),
    )
    db.execute("COMMIT")


def bench(runs: int, pending: int, failing: bool, repeat: int, tmp: Path) -> dict[str, float]:
    new_path, old_path = tmp / f"new-{runs}-{failing}.db", tmp / f"old-{runs}-{failing}.db"
    fill(new_path, runs, pending, failing)
    strip_to_old_schema(new_path, old_path)
    new, old = Store(new_path), Old(old_path)
    victims = iter(range(1, pending + 1))  # seq i is the head of run i % runs at first

    def new_turn() -> None:
        new.due_heads(SINK, NOW, limit=8)
        new.mark_delivered(SINK, [next(victims)])
        new.next_due(SINK)

    old_victims = iter(range(1, pending + 1))

    def old_turn() -> None:
        old.due_heads()
        old.deliver(next(old_victims))
        old.next_due()
        old.depth()

    old_repeat = max(3, repeat // 10)
    out = {
        "new due_heads": median_ms(lambda: new.due_heads(SINK, NOW, limit=8), repeat),
        "old due_heads": median_ms(old.due_heads, old_repeat),
        "new next_due": median_ms(lambda: new.next_due(SINK), repeat),
        "old next_due": median_ms(old.next_due, old_repeat),
        "new queue depth": median_ms(lambda: new.queue_depth(SINK), old_repeat),
        "old queue depth": median_ms(old.depth, old_repeat),
        "new turn": median_ms(new_turn, repeat),
        "old turn": median_ms(old_turn, old_repeat),
    }
    new_db = sqlite3.connect(new_path, isolation_level=None)
    new_db.execute("PRAGMA synchronous = NORMAL")
    seqs = iter(range(10 * pending, 11 * pending))
    out["new write"] = median_ms(lambda: write_one(new_db, next(seqs), "run_0"), repeat)
    out["old write"] = median_ms(lambda: write_one(old.db, next(seqs), "run_0"), old_repeat)
    new_db.close()
    batches, released = [], 0
    while True:  # as the sink does at recovery: one batch per dispatch turn
        start = time.perf_counter()
        n = new.release(SINK, NOW, limit=RELEASE_BATCH)
        batches.append((time.perf_counter() - start) * 1000)
        released += n
        if n < RELEASE_BATCH:
            break
    out["release batch"] = max(batches)
    out["release batch median"] = statistics.median(batches)
    out["release batches"] = len(batches)
    out["released"] = released
    new.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    print(f"{args.pending:,} pending webhook deliveries; median ms (`python bench/outbox.py`)\n")
    cols = ["due_heads", "next_due", "queue depth", "turn", "write"]
    print("| runs | heads | " + " | ".join(f"{c} new / old" for c in cols) + " | turn ratio |")
    print("|---:|---|" + "---:|" * (len(cols) + 1))
    with tempfile.TemporaryDirectory() as tmp:
        for runs in (1_000, 100_000):
            for failing in (False, True):
                r = bench(runs, args.pending, failing, args.repeat, Path(tmp))
                cells = " | ".join(f"{r['new ' + c]:.3f} / {r['old ' + c]:.1f}" for c in cols)
                ratio = r["old turn"] / r["new turn"]
                state = "failing (outage)" if failing else "due"
                print(f"| {runs:,} | {state} | {cells} | {ratio:,.0f}× |", flush=True)
                if failing:
                    print(
                        f"|  | at recovery, {int(r['released']):,} heads released in"
                        f" {int(r['release batches'])} batches of at most {RELEASE_BATCH}"
                        f" (one per turn): median {r['release batch median']:.2f} ms,"
                        f" max {r['release batch']:.1f} ms |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
