"""End to end on PostgreSQL: `runstep-watcher run` with `[state] url` (a throwaway server,
`tests/pg.py`) against the simulator; every transition once, and a SIGKILL then a restart
repeats nothing."""

from __future__ import annotations

from pathlib import Path

from tests.pg import PgServer, pg  # noqa: F401  (the fixture)
from tests.proc import Daemon, event_pairs
from tests.test_e2e import ALL_RUNS, SCENARIO, Expected, caught_up, check_events, config
from watcher.state.migrations_pg import LATEST


def _pg_config(tmp_path: Path, base_url: str, server: PgServer) -> tuple[Path, PgServer]:
    db = server.database("daemon_e2e")
    cfg = config(tmp_path, base_url, ALL_RUNS)
    text = cfg.read_text().replace(f'path = "{tmp_path / "state.db"}"', f'url = "{db.url}"')
    cfg.write_text(text)
    return cfg, db


def test_run_on_postgresql_reports_once_and_restarts_without_repeats(
    sim,
    tmp_path: Path,
    pg: PgServer,  # noqa: F811
) -> None:
    s = sim(SCENARIO)
    cfg, db = _pg_config(tmp_path, s.base_url, pg)

    def stdout_pending() -> int:
        return int(db.psql("SELECT COUNT(*) FROM deliveries WHERE sink = 'stdout'"))

    first = Daemon("run", "--config", str(cfg), cwd=tmp_path)
    exp = Expected()
    try:
        s.advance(1.5)
        caught_up(first, s, exp)
        first.wait_for(lambda: stdout_pending() == 0, 10, "marks")
    finally:
        first.kill()  # SIGKILL: no cleanup at all
    s.advance(7.0)  # every run ends while the daemon is down
    second = Daemon("run", "--config", str(cfg), cwd=tmp_path)
    try:
        reported = set(event_pairs(first.events))
        want = exp.snapshot(s)
        second.wait_for(lambda: want <= reported | set(event_pairs(second.events)), 20)
        check_events([*first.events, *second.events], exp.pairs)
    finally:
        second.kill()
    assert not list(tmp_path.glob("*.db*"))  # no SQLite file on the side
    assert db.psql("SELECT MAX(version) FROM schema_steps").strip() == str(LATEST)
