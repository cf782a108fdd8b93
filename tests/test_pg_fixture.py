"""The throwaway PostgreSQL server the PostgreSQL backend's tests start (tests/pg.py)."""

from __future__ import annotations

import stat

from tests.pg import PgServer, pg  # noqa: F401 (the fixture)


def test_a_throwaway_server_answers_on_its_socket_only(pg: PgServer):  # noqa: F811
    assert pg.psql("SELECT 1 + 1") == "2\n"
    assert pg.psql("SHOW listen_addresses") == "\n"  # no TCP: the unix socket only
    sockets = [p for p in pg.socket_dir.iterdir() if stat.S_ISSOCK(p.stat().st_mode)]
    assert [p.name for p in sockets] == [f".s.PGSQL.{pg.port}"]
    assert pg.url.startswith("postgresql://watcher@/postgres?host=")
