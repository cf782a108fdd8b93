"""The outbox's tables beside the deliveries: its heads and its counts, kept by triggers.

Plain SQL, migration step 2 (`migrations`): a state file written before they existed gets
them, filled once (`FILL_OUTBOX`); `CREATE … IF NOT EXISTS` since releases before versioned
migrations may have added them already. A release that does not know them still opens the
file (`meta.schema_version` stays 1), and the triggers keep them right for it. Step 4
(`OUTBOX_WITHOUT_STDOUT`) makes the same triggers again for every sink but stdout.
"""

from __future__ import annotations

__all__ = ["FILL_OUTBOX", "OUTBOX_SCHEMA", "OUTBOX_WITHOUT_STDOUT"]

# The triggers' statements, the same in step 2 (every sink) and step 4 (all but stdout).
_HEAD_ADDED = """\
    INSERT INTO outbox_heads (sink, thread_id, run_id, seq, due)
    SELECT NEW.sink, thread_id, run_id, NEW.seq, NEW.next_attempt_at FROM events
    WHERE seq = NEW.seq
    ON CONFLICT (sink, thread_id, run_id) DO UPDATE SET seq = excluded.seq, due = excluded.due
    WHERE excluded.seq < outbox_heads.seq;
"""
_HEAD_DUE = """\
    UPDATE outbox_heads SET due = NEW.next_attempt_at WHERE sink = NEW.sink AND seq = NEW.seq;
"""
_COUNT_UP = """\
    INSERT INTO outbox_counts VALUES (NEW.sink, NEW.state, 1)
    ON CONFLICT (sink, state) DO UPDATE SET n = n + 1;
"""
_COUNT_DOWN = """\
    UPDATE outbox_counts SET n = n - 1 WHERE sink = OLD.sink AND state = OLD.state;
"""

# The outbox's heads: per sink and run, the oldest pending delivery, with when it is due.
# Triggers keep it right whoever writes `deliveries` (record, delivery, dead letter, replay,
# purge, pruning): a dispatch turn reads a few index entries, never the whole backlog.
OUTBOX_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS outbox_heads (
    sink TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    due REAL NOT NULL,
    PRIMARY KEY (sink, thread_id, run_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS outbox_heads_seq ON outbox_heads (sink, seq);
CREATE INDEX IF NOT EXISTS outbox_heads_due ON outbox_heads (sink, due, seq);
CREATE TRIGGER IF NOT EXISTS outbox_head_added AFTER INSERT ON deliveries
WHEN NEW.state = 'pending' BEGIN
{_HEAD_ADDED}END;
CREATE TRIGGER IF NOT EXISTS outbox_head_back AFTER UPDATE OF state ON deliveries
WHEN OLD.state != 'pending' AND NEW.state = 'pending' BEGIN
{_HEAD_ADDED}END;
CREATE TRIGGER IF NOT EXISTS outbox_head_rescheduled AFTER UPDATE OF next_attempt_at
ON deliveries WHEN NEW.state = 'pending' BEGIN
{_HEAD_DUE}END;
"""

# A head that is delivered, dead-lettered or deleted hands over to the next pending delivery
# of its run (the events of a run are indexed by seq), or goes.
_HEAD_GONE = """
    INSERT OR REPLACE INTO outbox_heads (sink, thread_id, run_id, seq, due)
    SELECT h.sink, h.thread_id, h.run_id, d.seq, d.next_attempt_at FROM outbox_heads h
    JOIN events e ON e.thread_id = h.thread_id AND e.run_id = h.run_id AND e.seq > h.seq
    JOIN deliveries d ON d.sink = h.sink AND d.seq = e.seq AND d.state = 'pending'
    WHERE h.sink = OLD.sink AND h.seq = OLD.seq ORDER BY e.seq LIMIT 1;
    DELETE FROM outbox_heads WHERE sink = OLD.sink AND seq = OLD.seq;
"""
OUTBOX_SCHEMA += f"""
CREATE TRIGGER IF NOT EXISTS outbox_head_delivered AFTER DELETE ON deliveries
WHEN OLD.state = 'pending' BEGIN {_HEAD_GONE} END;
CREATE TRIGGER IF NOT EXISTS outbox_head_dead AFTER UPDATE OF state ON deliveries
WHEN OLD.state = 'pending' AND NEW.state != 'pending' BEGIN {_HEAD_GONE} END;
"""

# The queue's depth per sink and state, counted as it changes: reading it reads one row.
OUTBOX_SCHEMA += f"""
CREATE TABLE IF NOT EXISTS outbox_counts (
    sink TEXT NOT NULL,
    state TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (sink, state)
);
CREATE TRIGGER IF NOT EXISTS outbox_count_added AFTER INSERT ON deliveries BEGIN
{_COUNT_UP}END;
CREATE TRIGGER IF NOT EXISTS outbox_count_removed AFTER DELETE ON deliveries BEGIN
{_COUNT_DOWN}END;
CREATE TRIGGER IF NOT EXISTS outbox_count_moved AFTER UPDATE OF state ON deliveries
WHEN OLD.state != NEW.state BEGIN
{_COUNT_DOWN}{_COUNT_UP}END;
"""

# Filling the heads and counts of a state file written before they existed: once, when
# they are created.
FILL_OUTBOX = """
INSERT OR IGNORE INTO outbox_heads (sink, thread_id, run_id, seq, due)
SELECT d.sink, e.thread_id, e.run_id, d.seq, d.next_attempt_at FROM deliveries d
JOIN events e ON e.seq = d.seq WHERE d.state = 'pending' ORDER BY d.seq;
DELETE FROM outbox_counts;
INSERT INTO outbox_counts SELECT sink, state, COUNT(*) FROM deliveries GROUP BY sink, state
"""

# Migration step 4: stdout is written in the turn that records an event, so it needs no
# heads and no counts; only the sinks that deliver from the outbox (the webhook) keep them.
# Each recording for stdout alone then writes a third fewer pages (26 → 16 per event).
_WEBHOOK_TRIGGERS = (
    "outbox_head_added",
    "outbox_head_back",
    "outbox_head_rescheduled",
    "outbox_head_delivered",
    "outbox_head_dead",
    "outbox_count_added",
    "outbox_count_removed",
    "outbox_count_moved",
)
OUTBOX_WITHOUT_STDOUT = "".join(f"DROP TRIGGER IF EXISTS {t};\n" for t in _WEBHOOK_TRIGGERS)
OUTBOX_WITHOUT_STDOUT += """
DELETE FROM outbox_heads WHERE sink = 'stdout';
DELETE FROM outbox_counts WHERE sink = 'stdout';"""
OUTBOX_WITHOUT_STDOUT += f"""
CREATE TRIGGER outbox_head_added AFTER INSERT ON deliveries
WHEN NEW.state = 'pending' AND NEW.sink != 'stdout' BEGIN
{_HEAD_ADDED}END;
CREATE TRIGGER outbox_head_back AFTER UPDATE OF state ON deliveries
WHEN OLD.state != 'pending' AND NEW.state = 'pending' AND NEW.sink != 'stdout' BEGIN
{_HEAD_ADDED}END;
CREATE TRIGGER outbox_head_rescheduled AFTER UPDATE OF next_attempt_at
ON deliveries WHEN NEW.state = 'pending' AND NEW.sink != 'stdout' BEGIN
{_HEAD_DUE}END;
"""
OUTBOX_WITHOUT_STDOUT += f"""
CREATE TRIGGER outbox_head_delivered AFTER DELETE ON deliveries
WHEN OLD.state = 'pending' AND OLD.sink != 'stdout' BEGIN {_HEAD_GONE} END;
CREATE TRIGGER outbox_head_dead AFTER UPDATE OF state ON deliveries
WHEN OLD.state = 'pending' AND NEW.state != 'pending' AND OLD.sink != 'stdout'
BEGIN {_HEAD_GONE} END;
"""
OUTBOX_WITHOUT_STDOUT += f"""
CREATE TRIGGER outbox_count_added AFTER INSERT ON deliveries
WHEN NEW.sink != 'stdout' BEGIN
{_COUNT_UP}END;
CREATE TRIGGER outbox_count_removed AFTER DELETE ON deliveries
WHEN OLD.sink != 'stdout' BEGIN
{_COUNT_DOWN}END;
CREATE TRIGGER outbox_count_moved AFTER UPDATE OF state ON deliveries
WHEN OLD.state != NEW.state AND NEW.sink != 'stdout' BEGIN
{_COUNT_DOWN}{_COUNT_UP}END;
"""
