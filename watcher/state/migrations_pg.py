"""The PostgreSQL schema as an ordered list of steps, like SQLite's (`migrations`).

The same tables and versions as the state file; the steps applied are kept in
`schema_steps` (SQLite keeps them in `PRAGMA user_version`). Each step runs in its own
transaction holding an advisory lock, and checks the version again under the lock: two
replicas starting together apply each step once. A database at a version this release does
not know (a newer release wrote it) is refused, untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from watcher.state.outbox_claims_pg import CLAIMS
from watcher.state.statefile import StateError

__all__ = ["LATEST", "LOCK", "STEPS", "PgStep", "upgrade"]

#: `pg_advisory_xact_lock` key of the migrations ("rsw-migr" as bytes).
LOCK = 0x7273772D6D696772

_SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE objects (
    object_id TEXT COLLATE "C" PRIMARY KEY,
    thread_id TEXT COLLATE "C" NOT NULL,
    run_id TEXT COLLATE "C" NOT NULL,
    status TEXT NOT NULL,
    seen TEXT NOT NULL
);
CREATE INDEX objects_run ON objects (thread_id, run_id);
CREATE TABLE run_watches (
    id BIGSERIAL UNIQUE,
    thread_id TEXT COLLATE "C" NOT NULL,
    run_id TEXT COLLATE "C" NOT NULL,
    source TEXT NOT NULL,
    include TEXT,
    cursor TEXT,
    done INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (thread_id, run_id)
);
CREATE TABLE thread_watches (
    id BIGSERIAL UNIQUE,
    thread_id TEXT COLLATE "C" PRIMARY KEY,
    source TEXT NOT NULL,
    include TEXT,
    started_at DOUBLE PRECISION NOT NULL,
    listed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE events (
    seq BIGSERIAL PRIMARY KEY,
    event_id TEXT NOT NULL,
    thread_id TEXT COLLATE "C" NOT NULL,
    run_id TEXT COLLATE "C" NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE deliveries (
    seq BIGINT NOT NULL REFERENCES events (seq),
    sink TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION NOT NULL DEFAULT 0,
    deadline DOUBLE PRECISION,
    last_error TEXT,
    PRIMARY KEY (sink, seq)
);
CREATE INDEX events_run ON events (thread_id, run_id, seq);
CREATE INDEX deliveries_seq ON deliveries (seq);
CREATE INDEX deliveries_state ON deliveries (sink, state, seq);
INSERT INTO meta VALUES ('schema_version', '1');
"""

# The outbox's heads and counts, kept by one trigger function: the same rules as SQLite's
# triggers (`outbox_schema`), so a dispatch turn reads a few index entries, never the backlog.
_OUTBOX = """
CREATE TABLE outbox_heads (
    sink TEXT NOT NULL,
    thread_id TEXT COLLATE "C" NOT NULL,
    run_id TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    due DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (sink, thread_id, run_id)
);
CREATE UNIQUE INDEX outbox_heads_seq ON outbox_heads (sink, seq);
CREATE INDEX outbox_heads_due ON outbox_heads (sink, due, seq);
CREATE TABLE outbox_counts (
    sink TEXT NOT NULL, state TEXT NOT NULL, n BIGINT NOT NULL, PRIMARY KEY (sink, state)
);
CREATE FUNCTION outbox_head_gone(s TEXT, q BIGINT) RETURNS void LANGUAGE plpgsql AS $$
DECLARE t TEXT; r TEXT;
BEGIN
    DELETE FROM outbox_heads WHERE sink = s AND seq = q RETURNING thread_id, run_id INTO t, r;
    IF FOUND THEN
        INSERT INTO outbox_heads (sink, thread_id, run_id, seq, due)
        SELECT s, t, r, d.seq, d.next_attempt_at FROM events e
        JOIN deliveries d ON d.sink = s AND d.seq = e.seq AND d.state = 'pending'
        WHERE e.thread_id = t AND e.run_id = r AND e.seq > q ORDER BY e.seq LIMIT 1;
    END IF;
END $$;
CREATE FUNCTION outbox_head_added(s TEXT, q BIGINT, at DOUBLE PRECISION) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO outbox_heads (sink, thread_id, run_id, seq, due)
    SELECT s, thread_id, run_id, q, at FROM events WHERE seq = q
    ON CONFLICT (sink, thread_id, run_id) DO UPDATE SET seq = excluded.seq, due = excluded.due
    WHERE excluded.seq < outbox_heads.seq;
$$;
CREATE FUNCTION outbox_count(s TEXT, st TEXT, by INTEGER) RETURNS void LANGUAGE sql AS $$
    INSERT INTO outbox_counts VALUES (s, st, by)
    ON CONFLICT (sink, state) DO UPDATE SET n = outbox_counts.n + by;
$$;
CREATE FUNCTION outbox_track() RETURNS trigger LANGUAGE plpgsql AS $$
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
    ELSIF NEW.state = 'pending' AND OLD.next_attempt_at IS DISTINCT FROM NEW.next_attempt_at THEN
        UPDATE outbox_heads SET due = NEW.next_attempt_at WHERE sink = NEW.sink AND seq = NEW.seq;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_track AFTER INSERT OR UPDATE OR DELETE ON deliveries
FOR EACH ROW EXECUTE FUNCTION outbox_track();
"""


_DONE_AT = """
ALTER TABLE run_watches ADD COLUMN done_at DOUBLE PRECISION;
CREATE INDEX run_watches_done ON run_watches (done_at) WHERE done = 1;
"""

# Replicas: who polls a watch (`run_id` '' for a thread watch) until when (`store_pg_leases`).
_LEASES = """
CREATE TABLE watch_leases (
    thread_id TEXT COLLATE "C" NOT NULL,
    run_id TEXT COLLATE "C" NOT NULL,
    owner TEXT,
    expires_at DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (thread_id, run_id)
);
CREATE INDEX watch_leases_expiry ON watch_leases (expires_at);
CREATE INDEX watch_leases_owner ON watch_leases (owner);
"""

# Replicas alive (a heartbeat each lease tick) and a count of the active watches cheap
# enough for every tick: each replica takes its share of them (`store_pg_leases.share`).
_REPLICAS = """
CREATE TABLE replicas (
    id TEXT COLLATE "C" PRIMARY KEY,
    seen_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX run_watches_active ON run_watches (thread_id) WHERE done = 0;
"""

# The outbox's counts in slots, one per backend (its pid mod 64), summed when read: every
# recording and mark of every replica added to the one row of its (sink, state) and held
# its lock until commit, so the replicas' recordings queued behind each other.
_COUNT_SLOTS = """
ALTER TABLE outbox_counts ADD COLUMN slot INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox_counts DROP CONSTRAINT outbox_counts_pkey;
ALTER TABLE outbox_counts ADD PRIMARY KEY (sink, state, slot);
CREATE OR REPLACE FUNCTION outbox_count(s TEXT, st TEXT, by INTEGER) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO outbox_counts (sink, state, n, slot) VALUES (s, st, by, pg_backend_pid() % 64)
    ON CONFLICT (sink, state, slot) DO UPDATE SET n = outbox_counts.n + by;
$$;
"""


@dataclass(frozen=True, slots=True)
class PgStep:
    version: int
    title: str
    sql: str


#: In order, numbered like SQLite's steps; a new step goes at the end, with the next version.
STEPS = (
    PgStep(1, "the first release's schema", _SCHEMA_1),
    PgStep(2, "outbox heads and counts, kept by a trigger", _OUTBOX),
    PgStep(3, "run_watches.done_at, for retention", _DONE_AT),
    PgStep(4, "watch_leases, for replicas", _LEASES),
    PgStep(5, "claims on outbox heads, for replicas", CLAIMS),
    PgStep(6, "replicas' heartbeats, for each replica's share of the watches", _REPLICAS),
    PgStep(7, "outbox counts in slots, so replicas recording at once do not queue", _COUNT_SLOTS),
)
LATEST = STEPS[-1].version

_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_steps"
    " (version INTEGER PRIMARY KEY, title TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
)


async def _version(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> int:
    cur = await conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_steps")
    row = await cur.fetchone()
    return int(str(row[0])) if row else 0


async def upgrade(
    conn: psycopg.AsyncConnection[tuple[object, ...]], where: str, now: float
) -> list[int]:
    """Apply the steps the database lacks, in order, each in a transaction under the
    advisory lock; the versions applied (by this process)."""
    applied: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK,))
        await conn.execute(_VERSION_TABLE)
    for step in STEPS:
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK,))
                at = await _version(conn)
                if at > LATEST:
                    raise StateError(
                        f"state database {where} was written by a newer version (version "
                        f"{at}; this one knows version {LATEST}); it was left untouched"
                    )
                if at >= step.version:
                    continue
                await conn.execute(step.sql.encode())
                await conn.execute(
                    "INSERT INTO schema_steps VALUES (%s, %s, %s)", (step.version, step.title, now)
                )
                applied.append(step.version)
        except psycopg.Error as exc:
            raise StateError(
                f"state database {where}: step {step.version} ({step.title}) failed: {exc}"
            ) from None
    return applied
