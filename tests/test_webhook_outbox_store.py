"""The outbox in the SQLite file: its heads table stays right whoever writes deliveries,
a state file written before it existed gets it, dead letters are purged."""

from __future__ import annotations

import random
import sqlite3

from tests.fakes import FakeClock
from watcher.core.transitions import Observed, detect
from watcher.delivery.webhook import SINK
from watcher.state.store import OutboxItem, Store

OTHER = "stdout"


def record(store: Store, clock: FakeClock, run_id: str, step: int) -> int:
    """One event of `run_id` (its step `step` completed), for the webhook and stdout."""
    store.add_run_watch("thread_s", run_id, "config")
    oid = f"step_{run_id}_{step}"
    obs = Observed(oid, "thread.run.step", "completed", "thread_s", run_id, {"id": oid})
    found = detect(store.known_states("thread_s", run_id), [obs], now=int(clock.wall()))
    [seq] = store.record(
        "thread_s", run_id, found.events, found.updates, cursor=None, done=False,
        sinks=[SINK, OTHER], deadlines={SINK: clock.wall() + 3600},
    )  # fmt: skip
    return seq


def expected_heads(store: Store, now: float) -> set[int]:
    """What the heads are by definition: each run's oldest pending delivery, if due."""
    oldest: dict[str, OutboxItem] = {}
    for item in store.outbox(SINK):
        if item.state == "pending" and item.run_id not in oldest:
            oldest[item.run_id] = item
    return {it.seq for it in oldest.values() if it.next_attempt_at <= now}


def test_heads_follow_every_write_to_the_outbox(tmp_path):
    rng = random.Random(7)
    clock = FakeClock()
    store = Store(tmp_path / "s.db")
    steps: dict[str, int] = {}
    for _ in range(600):
        run = f"run_{rng.randrange(12)}"
        pending = [it for it in store.outbox(SINK) if it.state == "pending"]
        heads = store.due_heads(SINK, clock.wall(), limit=100)
        action = rng.random()
        if action < 0.4 or not pending:
            steps[run] = steps.get(run, 0) + 1
            record(store, clock, run, steps[run])
        elif action < 0.6 and heads:
            store.mark_delivered(SINK, [rng.choice(heads).seq])
        elif action < 0.7:
            store.mark_delivered(OTHER, [it.seq for it in pending])
        elif action < 0.8 and heads:
            store.reschedule(SINK, rng.choice(heads).seq, at=clock.wall() + 5, error="HTTP 503")
        elif action < 0.85 and heads:
            store.mark_dead(SINK, rng.choice(heads).seq, error="HTTP 400")
        elif action < 0.9:
            store.replay(SINK, deadline=clock.wall() + 3600)
        elif action < 0.93:
            store.purge(SINK)
        elif action < 0.96:
            store.release(SINK, clock.wall())
        else:
            clock.t += 3
        got = store.due_heads(SINK, clock.wall(), limit=100)
        assert {it.seq for it in got} == expected_heads(store, clock.wall())
        assert len({it.run_id for it in got}) == len(got)
        states = [it.state for it in store.outbox(SINK)]
        assert store.queue_depth(SINK) == {s: states.count(s) for s in ("pending", "dead")}
    oldest = store.oldest_head(SINK)
    pending = [it.seq for it in store.outbox(SINK) if it.state == "pending"]
    assert (oldest.seq if oldest else None) == (min(pending) if pending else None)


def test_a_state_file_from_before_the_heads_table_gets_it(tmp_path):
    clock = FakeClock()
    path = tmp_path / "s.db"
    store = Store(path)
    seqs = [record(store, clock, f"run_{i % 3}", i) for i in range(9)]
    store.reschedule(SINK, seqs[0], at=clock.wall() + 60, error="HTTP 503")
    store.close()
    db = sqlite3.connect(path)  # as the previous version wrote it: no heads, no triggers
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        db.execute(f"DROP TRIGGER {name}")
    db.execute("DROP TABLE outbox_heads")
    db.execute("DROP TABLE outbox_counts")
    db.execute("PRAGMA user_version = 0")  # as releases before versioned migrations left it
    db.commit()
    db.close()
    store = Store(path)
    assert [it.seq for it in store.due_heads(SINK, clock.wall())] == [seqs[1], seqs[2]]
    assert store.next_due(SINK) == 0
    assert store.oldest_head(SINK).seq == seqs[0]
    assert store.queue_depth(SINK) == {"pending": 9, "dead": 0}
    store.mark_delivered(SINK, [seqs[1]])  # the triggers are back too
    assert [it.seq for it in store.due_heads(SINK, clock.wall())] == [seqs[2], seqs[4]]
    assert store.queue_depth(SINK) == {"pending": 8, "dead": 0}


def test_purge_drops_dead_letters_only(tmp_path):
    clock = FakeClock()
    store = Store(tmp_path / "s.db")
    old = record(store, clock, "run_1", 1)
    clock.t += 100
    new = record(store, clock, "run_2", 1)
    kept = record(store, clock, "run_3", 1)
    store.mark_delivered(OTHER, [old, new, kept])
    store.mark_dead(SINK, old, error="HTTP 400")
    store.mark_dead(SINK, new, error="HTTP 400")
    assert store.purge(SINK, before=clock.wall() - 50) == 1
    assert [(it.seq, it.state) for it in store.outbox(SINK)] == [(new, "dead"), (kept, "pending")]
    assert store.purge(SINK) == 1
    assert [it.seq for it in store.outbox(SINK)] == [kept]
    assert store.queue_depth(SINK) == {"pending": 1, "dead": 0}
