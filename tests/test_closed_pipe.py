"""`runstep-watcher watch … | head -1`: once the reader has gone, the watcher ends as a
shell tool does on SIGPIPE (141), at once and without a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

from tests.cli import env
from tests.hostile_api import HostileApi
from tests.proc import Daemon


def _response(status: str) -> dict[str, str | int]:
    return {"id": "resp_pipe", "object": "response", "created_at": 1, "status": status}


def test_watch_whose_reader_left_exits_141_quietly():
    """Before: each poll logged "bug: a poll crashed" with a traceback, for ever."""
    reader_gone = threading.Event()
    api = HostileApi(lambda path, n: _response("in_progress" if reader_gone.is_set() else "queued"))
    read, write = os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "watcher", "watch", "resp_pipe", "--exit-status", "--json"],
            stdout=write,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env(OPENAI_BASE_URL=api.base_url, OPENAI_API_KEY="sk-pipe-0000"),
        )
        os.close(write)
        with os.fdopen(read) as lines:
            first = lines.readline()  # `head -1`
        reader_gone.set()
        try:
            _, stderr = proc.communicate(timeout=30)
        finally:
            proc.kill()
    finally:
        api.close()
    assert '"type":"response.queued"' in first
    assert proc.returncode == 141, stderr[-800:]
    assert "Traceback" not in stderr and "bug" not in stderr, stderr[-800:]


def test_the_daemon_whose_reader_left_exits_141_and_the_next_start_writes_it(tmp_path):
    """Nothing recorded is lost: the event the closed pipe did not take goes out next time."""
    api = HostileApi(lambda path, n: _response("completed" if n > 1 else "queued"))
    config = tmp_path / "c.toml"
    config.write_text(
        f'[api]\nbase_url = "{api.base_url}"\n[poll]\ninterval = 0.2\n'
        f'[state]\npath = "{tmp_path / "s.db"}"\n[[watch]]\nresponse_id = "resp_pipe"\n'
    )
    read, write = os.pipe()
    os.close(read)
    try:
        first = subprocess.run(
            [sys.executable, "-m", "watcher", "run", "--config", str(config)],
            stdout=write,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=30,
            env=env(OPENAI_API_KEY="sk-pipe-0000"),
        )
        os.close(write)
        assert first.returncode == 141 and "Traceback" not in first.stderr, first.stderr[-800:]
        again = Daemon("run", "--config", str(config), OPENAI_API_KEY="sk-pipe-0000")
        try:
            again.wait_for(lambda: len(again.events) >= 2, 20, "the events")
            assert again.stop(signal.SIGTERM) == 0
        finally:
            again.kill()
    finally:
        api.close()
    assert [(e["type"], e["previous_status"]) for e in again.events] == [
        ("response.queued", None),
        ("response.completed", "queued"),
    ]
