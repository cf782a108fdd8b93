"""The PostgreSQL schema step of claims on the outbox's heads (`migrations_pg` step 5): the
SQL apart, as SQLite's outbox schema is (`outbox_schema`), to keep the steps' list short.

The trigger function `outbox_track` and `outbox_head_added` of step 2 are replaced by these,
which know the claim; `store_pg_outbox` takes and reads the claims.
"""

from __future__ import annotations

__all__ = ["CLAIMS"]

# Replicas: a head taken for delivery is `claimed_by` a replica until `claimed_until`, and
# `due` is then when the claim expires (no sooner than its schedule, for a probe's claim:
# `store_pg_outbox`); deliveries.next_attempt_at keeps the schedule. Any
# write to the head's pending delivery (an outcome) ends the claim; a run whose head is
# replaced by an earlier event (a replay) stays claimed until that claim expires.
CLAIMS = """
ALTER TABLE outbox_heads ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox_heads ADD COLUMN claimed_until DOUBLE PRECISION;
CREATE OR REPLACE FUNCTION outbox_head_added(s TEXT, q BIGINT, at DOUBLE PRECISION)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO outbox_heads (sink, thread_id, run_id, seq, due)
    SELECT s, thread_id, run_id, q, at FROM events WHERE seq = q
    ON CONFLICT (sink, thread_id, run_id) DO UPDATE SET seq = excluded.seq,
    due = CASE WHEN outbox_heads.claimed_by IS NULL THEN excluded.due
          ELSE GREATEST(excluded.due, outbox_heads.due) END
    WHERE excluded.seq < outbox_heads.seq;
$$;
CREATE OR REPLACE FUNCTION outbox_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM outbox_count(NEW.sink, NEW.state, 1);
        IF NEW.state = 'pending' THEN
            PERFORM outbox_head_added(NEW.sink, NEW.seq, NEW.next_attempt_at);
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM outbox_count(OLD.sink, OLD.state, -1);
        IF OLD.state = 'pending' THEN
            PERFORM outbox_head_gone(OLD.sink, OLD.seq);
        END IF;
    ELSIF OLD.state IS DISTINCT FROM NEW.state THEN
        PERFORM outbox_count(OLD.sink, OLD.state, -1);
        PERFORM outbox_count(NEW.sink, NEW.state, 1);
        IF OLD.state = 'pending' THEN
            PERFORM outbox_head_gone(OLD.sink, OLD.seq);
        ELSIF NEW.state = 'pending' THEN
            PERFORM outbox_head_added(NEW.sink, NEW.seq, NEW.next_attempt_at);
        END IF;
    ELSIF NEW.state = 'pending' THEN
        UPDATE outbox_heads SET due = NEW.next_attempt_at, claimed_by = NULL, claimed_until = NULL
        WHERE sink = NEW.sink AND seq = NEW.seq
        AND (due IS DISTINCT FROM NEW.next_attempt_at OR claimed_by IS NOT NULL);
    END IF;
    RETURN NULL;
END $$;
"""
