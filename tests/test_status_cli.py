"""`runstep-watcher status --config FILE` as a process: who holds what, on a real
PostgreSQL (leases written through the store, as replicas write them) and on SQLite (the
state file's lock held for real)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import anyio

from tests.cli import run_cli
from tests.pg import PgServer, pg  # noqa: F401  (the fixture)
from watcher.state.statefile import hold_lock
from watcher.state.store import Store
from watcher.state.store_pg import PgStore

PASSWORD = "pg-pass-never-shown-0000"
A, B = "host-a:101:aaaa", "host-b:202:bbbb"


async def _replicas_took_leases(url: str, now: float) -> None:
    """Five watches: replica B held one and stopped renewing it (expired), replica A holds
    two (free ones go first), two are still free."""
    store = await PgStore.open(url)
    try:
        await store.add_run_watch("response:", "resp_1", "api")
        taken = await store.take_leases(B, now - 100, lease=15)
        assert [t.key for t in taken] == [("response:", "resp_1")]
        await store.add_run_watch("thread_1", "run_1", "api")
        await store.add_run_watch("thread_1", "run_2", "config")
        await store.add_thread_watch("thread_2", "config", now)
        await store.add_run_watch("thread_1", "run_0", "api")
        await store.mark_runs_ignored("thread_1", ["run_ignored"])
        # a long lease: A's hold whatever the load on the machine running this
        taken = await store.take_leases(A, now, lease=600, limit=2)
        assert ("response:", "resp_1") not in [t.key for t in taken]
    finally:
        await store.close()


def test_status_on_postgresql_lists_replicas_and_unheld_watches(
    tmp_path: Path,
    pg: PgServer,  # noqa: F811
) -> None:
    url = pg.database("status_cli").url
    now = time.time()
    anyio.run(_replicas_took_leases, url, now)
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[state]\nurl = "{url}"\n')

    result = run_cli("status", "--config", str(cfg), "--json", PGPASSWORD=PASSWORD)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["backend"] == "postgresql"
    assert "?host=*" in report["state"]  # masked as everywhere else
    assert report["watches"] == 5  # the ignored run is no watch
    [replica] = report["replicas"]  # B's lease ran out: B holds nothing any more
    assert replica["id"] == A
    assert len(replica["watches"]) == 2
    for w in replica["watches"]:
        assert now + 599 < w["expires_at"] < now + 601
    unheld = {w["watch"]: w for w in report["unheld"]}
    assert len(unheld) == 3
    expired = unheld["response resp_1"]
    assert (expired["lease"], expired["owner"]) == ("expired", B)
    assert (expired["kind"], expired["id"]) == ("response", "resp_1")  # as /v1/watches names it
    assert expired["expires_at"] < now
    assert sorted(w["lease"] for w in unheld.values()) == ["expired", "free", "free"]
    held = {w["watch"] for w in replica["watches"]}
    assert held | set(unheld) == {
        "response resp_1",
        "run run_0 of thread thread_1",
        "run run_1 of thread thread_1",
        "run run_2 of thread thread_1",
        "thread thread_2",
    }
    every = [*replica["watches"], *unheld.values()]
    [thread] = [w for w in every if w["watch"] == "thread thread_2"]
    assert (thread["thread_id"], thread["run_id"]) == ("thread_2", None)

    text = run_cli("status", "--config", str(cfg), PGPASSWORD=PASSWORD)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].startswith("PostgreSQL postgresql://watcher@/status_cli?host=*")
    assert f"replica {A}: 2 watch(es)" in lines
    assert "not held: 3 watch(es)" in lines
    assert any("response resp_1" in ln and "expired" in ln and B in ln for ln in lines)
    assert any("thread thread_2" in ln for ln in lines)
    for out in (result, text):
        assert PASSWORD not in out.stdout + out.stderr


def test_status_on_an_unreachable_database_exits_73_at_once(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    nowhere = tmp_path / "no-server-here"
    cfg.write_text(f'[state]\nurl = "postgresql://watcher@/db?host={nowhere}"\n')
    result = run_cli("status", "--config", str(cfg), PGPASSWORD=PASSWORD, timeout=20)
    assert result.returncode == 73, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("runstep-watcher: state error: state database postgresql://")
    assert line.endswith("failed: No such file or directory")  # libpq's reason, once
    assert PASSWORD not in result.stderr
    assert result.stdout == ""


def test_status_on_sqlite_says_whether_a_daemon_holds_the_file(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[state]\npath = "{state}"\n')

    missing = run_cli("status", "--config", str(cfg))
    assert missing.returncode == 0, missing.stderr
    assert "no state file yet" in missing.stdout
    assert not state.exists()  # asked, not created

    store = Store(state)
    store.add_run_watch("thread_1", "run_1", "config")
    store.add_run_watch("response:", "resp_1", "api")
    store.close()
    fd = hold_lock(state)  # as `run` takes it, for as long as this holds it
    assert fd is not None
    try:
        busy = run_cli("status", "--config", str(cfg), "--json")
        assert busy.returncode == 0, busy.stderr
        report = json.loads(busy.stdout)
        assert report["daemon"] == {"running": True, "pid": os.getpid()}
        assert [w["watch"] for w in report["watches"]] == [
            "response resp_1",
            "run run_1 of thread thread_1",
        ]
        text = run_cli("status", "--config", str(cfg))
        assert f"a daemon holds it (pid {os.getpid()})" in text.stdout.splitlines()[0]
        assert "one process per state file" in text.stdout
    finally:
        os.close(fd)
    idle = run_cli("status", "--config", str(cfg), "--json")
    assert json.loads(idle.stdout)["daemon"] == {"running": False, "pid": None}


def test_status_with_a_bad_config_exits_78(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[state]\nurl = "mysql://watcher@db/x"\n')
    result = run_cli("status", "--config", str(cfg))
    assert result.returncode == 78
    assert "state.url" in result.stderr
