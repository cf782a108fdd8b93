"""The state file: one daemon at a time, created private whatever the umask, no symlink.
Through the CLI as processes and the files on disk."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli import run_cli
from tests.proc import Daemon
from tests.test_production import free_port

BASE = "http://127.0.0.1:9/v1"  # loopback: no key needed; nothing is watched


def config(tmp_path: Path, state: Path, *, http: bool = False) -> str:
    text = f'[state]\npath = "{state}"\n'
    if http:
        text += f'[http]\nlisten = "127.0.0.1:{free_port()}"\n'
    path = tmp_path / "c.toml"
    path.write_text(text)
    return str(path)


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)  # the children inherit it
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_one_daemon_per_state_file_and_private_files_whatever_the_umask(tmp_path, umask_022):
    state = tmp_path / "new-dir" / "state.db"
    cfg = config(tmp_path, state, http=True)
    first = Daemon("run", "--config", cfg, OPENAI_BASE_URL=BASE)
    try:
        first.wait_log("http endpoint listening")
        files = [state, Path(f"{state}-wal"), Path(f"{state}-shm"), Path(f"{state}.lock")]
        assert {p.name: oct(mode(p)) for p in files} == {p.name: "0o600" for p in files}
        assert oct(mode(state.parent)) == "0o700"
        second = run_cli("run", "--config", cfg, OPENAI_BASE_URL=BASE, timeout=30)
        assert second.returncode == 73, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f"pid {first.proc.pid}" in lines[0]
        assert "in use" in lines[0]
        # short commands may run beside the daemon
        listed = run_cli("outbox", "list", "--config", cfg, timeout=30)
        assert listed.returncode == 0, listed.stderr
    finally:
        assert first.stop() == 0


@pytest.mark.parametrize("command", [("run",), ("outbox", "list")])
def test_a_symlink_at_the_state_path_is_refused(tmp_path, command):
    real = tmp_path / "elsewhere.db"
    real.write_bytes(b"")
    link = tmp_path / "state.db"
    link.symlink_to(real)
    result = run_cli(*command, "--config", config(tmp_path, link), OPENAI_BASE_URL=BASE)
    assert result.returncode == 73
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "symbolic link" in lines[0] and str(link) in lines[0]
    assert real.read_bytes() == b""
