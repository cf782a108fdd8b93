"""`[state] url`: PostgreSQL instead of the SQLite file; its password from `password_file`,
$PGPASSWORD or the `state-password` credential, never shown. Through `check-config` and
`run` as processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli import run_cli

KEY = "sk-state-url-abcdef123456"
PASSWORD = "pg-Pa55-very-secret"
URL = "postgresql://watcher@db.example:5432/watcher"


def _check(tmp_path: Path, state: str, *args: str, **env: str):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[state]\n{state}\n")
    return run_cli("check-config", "--config", str(cfg), *args, OPENAI_API_KEY=KEY, **env)


def _state(result) -> dict[str, object]:
    assert result.returncode == 0, result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    return json.loads(result.stdout)["state"]


def test_password_file_is_read_and_masked(tmp_path: Path) -> None:
    secret = tmp_path / "pg.pw"
    secret.write_text(PASSWORD + "\n")
    state = _state(_check(tmp_path, f'url = "{URL}"\npassword_file = "{secret}"'))
    assert state["url"] == URL
    assert state["password"] == "**********"


def test_pgpassword_and_the_credential_are_masked(tmp_path: Path) -> None:
    state = _state(_check(tmp_path, f'url = "{URL}"', PGPASSWORD=PASSWORD))
    assert state["password"] == "**********"
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "state-password").write_text(PASSWORD)
    state = _state(_check(tmp_path, f'url = "{URL}"', "--credentials-dir", str(creds)))
    assert state["password"] == "**********"


def test_sqlite_stays_the_default(tmp_path: Path) -> None:
    state = _state(_check(tmp_path, "retention = 60", PGPASSWORD=PASSWORD))
    assert state["url"] is None and state["password"] is None
    assert state["path"] == "runstep-watcher.db"


@pytest.mark.parametrize(
    ("state", "field"),
    [
        (f'url = "{URL}"\npath = "x.db"', "path:"),
        (f'url = "postgresql://watcher:{PASSWORD}@db.example/w"', "url:"),
        ('url = "mysql://db.example/w"', "url:"),
        (f'url = "{URL}"\npassword = "{PASSWORD}"', "state.password:"),
    ],
)
def test_bad_state_settings_exit_78_naming_the_field(
    tmp_path: Path, state: str, field: str
) -> None:
    result = _check(tmp_path, state)
    assert result.returncode == 78
    assert field in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert PASSWORD not in result.stderr


def test_outbox_on_a_url_config_refuses_rather_than_read_another_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[state]\nurl = "{URL}"\n')
    result = run_cli("outbox", "list", "--config", str(cfg), cwd=tmp_path, OPENAI_API_KEY=KEY)
    assert result.returncode == 78, result.stderr
    assert "state.url" in result.stderr
    assert not list(tmp_path.glob("*.db*"))
