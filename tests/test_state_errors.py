"""A state file that cannot be used: a clear error and exit 73, the file left untouched."""

from __future__ import annotations

import sqlite3

from tests.cli import run_cli
from watcher.state.store import SCHEMA_VERSION, Store

KEY = "sk-state-SECRET-1234567890"


def config(tmp_path, state_path) -> str:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[state]\npath = "{state_path}"\n[[watch]]\nthread_id = "thread_1"\n')
    return str(cfg)


def test_corrupt_state_file_exits_73_untouched(tmp_path):
    state = tmp_path / "state.db"
    state.write_bytes(b"garbage" * 1000)
    before = state.read_bytes()
    result = run_cli(
        "run",
        "--config",
        config(tmp_path, state),
        OPENAI_BASE_URL="http://127.0.0.1:9/v1",
        OPENAI_API_KEY=KEY,
    )
    assert result.returncode == 73
    assert "state error" in result.stderr and str(state) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert state.read_bytes() == before
    assert KEY not in result.stderr + result.stdout


def test_newer_state_file_exits_73_untouched(tmp_path):
    state = tmp_path / "state.db"
    Store(state).close()
    db = sqlite3.connect(state)
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 7),))
    db.commit()
    db.close()
    before = state.read_bytes()
    result = run_cli(
        "run", "--config", config(tmp_path, state), OPENAI_BASE_URL="http://127.0.0.1:9/v1"
    )
    assert result.returncode == 73
    assert "newer version" in result.stderr
    assert state.read_bytes() == before


def test_unwritable_state_location_exits_73(tmp_path):
    # /proc refuses new files even to root: a read-only location
    result = run_cli(
        "run",
        "--config",
        config(tmp_path, "/proc/runstep-watcher.db"),
        OPENAI_BASE_URL="http://127.0.0.1:9/v1",
    )
    assert result.returncode == 73
    assert "/proc/runstep-watcher.db" in result.stderr
    assert "Traceback" not in result.stderr


def test_another_applications_database_exits_73_untouched(tmp_path):
    """[state] path naming some other program's SQLite file by mistake: refused, not
    given our tables beside its own."""
    state = tmp_path / "app.db"
    db = sqlite3.connect(state)
    db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    db.execute("INSERT INTO customers (name) VALUES ('Ada')")
    db.commit()
    db.close()
    before = state.read_bytes()
    result = run_cli(
        "run", "--config", config(tmp_path, state), OPENAI_BASE_URL="http://127.0.0.1:9/v1"
    )
    assert result.returncode == 73, result.stderr
    assert "customers" in result.stderr and str(state) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert state.read_bytes() == before
