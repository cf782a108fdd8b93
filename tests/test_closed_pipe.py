"""`runstep-watcher watch … | head -1`: once the reader has gone, the watcher ends as a
shell tool does on SIGPIPE (141), at once and without a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from tests.cli import env
from tests.hostile_api import HostileApi


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
