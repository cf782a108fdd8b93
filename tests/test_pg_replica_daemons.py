"""Two `runstep-watcher run` processes on one PostgreSQL database (a throwaway server,
`tests/pg.py`) against the simulator: each watch polled by the replica holding its lease,
every transition reported once between them, and a SIGTERM hands the watches over."""

from __future__ import annotations

from pathlib import Path

from tests.pg import PgServer, pg  # noqa: F401  (the fixture)
from tests.proc import Daemon, event_pairs
from tests.test_e2e import ALL_RUNS, SCENARIO, Expected, check_events, config


def test_two_replicas_share_the_watches_and_a_clean_stop_hands_them_over(
    sim,
    tmp_path: Path,
    pg: PgServer,  # noqa: F811
) -> None:
    s = sim(SCENARIO)
    db = pg.database("replica_daemons")
    cfg = config(tmp_path, s.base_url, ALL_RUNS)
    path = f'path = "{tmp_path / "state.db"}"'
    cfg.write_text(cfg.read_text().replace(path, f'url = "{db.url}"\nlease = 3'))
    exp = Expected()
    a = Daemon("run", "--config", str(cfg), cwd=tmp_path)
    b = None
    try:
        a.wait_log("watching")
        b = Daemon("run", "--config", str(cfg), cwd=tmp_path)
        b.wait_log("watching")
        assert any('"replica": "' in line for line in a.stderr)  # its id in its log lines

        def reported() -> set[tuple[str, str]]:
            return set(event_pairs(a.events)) | set(event_pairs(b.events))  # type: ignore[union-attr]

        for step in (0.0, 1.5):
            s.advance(step)
            want = exp.snapshot(s)
            a.wait_for(lambda w=want: w <= reported(), 20, "transitions")
        assert a.stop() == 0  # SIGTERM: a's leases released at once
        assert any("leases released" in line for line in a.stderr)
        b.wait_log("lease taken", timeout=10)
        s.advance(7.0)
        want = exp.snapshot(s)
        b.wait_for(lambda: want <= reported(), 20, "transitions after the hand-over")
        check_events([*a.events, *b.events], exp.pairs)
    finally:
        a.kill()
        if b is not None:
            b.kill()
    taken = [line for line in b.stderr if "lease taken" in line]
    assert taken and all('"previous_owner": null' in line for line in taken)  # released
