"""API text shown to a person is escaped: the live view on a terminal, `outbox list`."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from typing import Any

from tests.cli import env, run_cli
from tests.hostile_api import HostileApi
from watcher.core.events import Event
from watcher.delivery.webhook import SINK
from watcher.state.store import Store

TITLE = "\x1b]0;PWNED\x07"  # retitles a terminal
CLEAR = "\x1b[2J\x1b[H"  # clears it


def read_all(master: int, timeout: float = 30) -> str:
    """What a pty shows until the process closes it (or `timeout`)."""
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not select.select([master], [], [], deadline - time.monotonic())[0]:
            break
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode("utf-8", "replace")


def _answers(path: str, n: int) -> Any:
    first = n == 0
    if path.endswith("/steps"):
        return {
            "object": "list",
            "has_more": False,
            "data": [
                {
                    "id": "step_1",
                    "object": "thread.run.step",
                    "type": "tool_calls",
                    "status": "in_progress" + TITLE if first else "completed",
                    "created_at": 1_000_000,
                    "step_details": {
                        "type": "tool_calls",
                        "tool_calls": [
                            {"id": "c", "type": "function", "function": {"name": "[/oops]"}}
                        ],
                    },
                },
                {
                    "id": "step_2",
                    "object": "thread.run.step",
                    "type": "message_creation" + CLEAR,
                    "status": "completed",
                    "created_at": 1_000_000,
                },
            ],
        }
    return {
        "id": "run_1",
        "object": "thread.run",
        "status": "in_progress" + CLEAR if first else "completed",
        "created_at": 1_000_000,
    }


def test_live_view_shows_escapes_and_markup_as_text_and_exits(tmp_path):
    api = HostileApi(_answers)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "watcher", "watch", "thread_a", "run_1", "--exit-status"],
        stdout=slave,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        env=env(OPENAI_BASE_URL=api.base_url, COLUMNS="160"),
    )
    os.close(slave)
    try:
        screen = read_all(master)
        # today: a markup error on every redraw, so it never ends
        assert proc.wait(1) == 0
    finally:
        proc.kill()
        proc.wait(10)
        os.close(master)
        api.close()
    assert TITLE not in screen and "\x1b[2J" not in screen
    assert "\\x1b]0;PWNED\\x07" in screen and "\\x1b[2J" in screen
    assert "[/oops]" in screen


def test_outbox_list_shows_control_characters_as_escapes(tmp_path):
    state = tmp_path / "s.db"
    store = Store(state)
    event = Event(
        id="evt_1",
        type="thread.run." + "completed\x1b[2J\nFAKE LINE",
        created_at=1_700_000_000,
        data={},
        previous_status=None,
        thread_id="thread_a",
        run_id="run_1",
    )
    [seq] = store.record("thread_a", "run_1", [event], {}, cursor=None, done=False, sinks=[SINK])
    store.mark_dead(SINK, seq, error="HTTP 500: \x1b]0;PWNED\x07\r\nanother line")
    store.close()
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[state]\npath = "{state}"\n')
    listed = run_cli("outbox", "list", "--config", str(cfg))
    assert listed.returncode == 0, listed.stderr
    assert "\x1b" not in listed.stdout and "\r" not in listed.stdout
    assert len(listed.stdout.splitlines()) == 2  # the header and one row
    assert "completed\\x1b[2J\\nFAKE LINE" in listed.stdout
    assert "\\x1b]0;PWNED\\x07\\r\\nanother line" in listed.stdout


def test_api_error_text_reaches_a_terminal_escaped(tmp_path):
    """The API's error message, in log lines and in the final error line, on a terminal."""
    refusal = {"error": {"message": "bad key" + TITLE + CLEAR, "type": "invalid_request"}}
    api = HostileApi(lambda path, n: (401, refusal))
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "watcher", "watch", "thread_a", "run_1"],
        stdout=subprocess.DEVNULL,
        stderr=slave,
        stdin=subprocess.DEVNULL,
        env=env(OPENAI_BASE_URL=api.base_url, OPENAI_API_KEY="sk-textsafe-0123456789"),
    )
    os.close(slave)
    try:
        screen = read_all(master)
        assert proc.wait(1) == 3
    finally:
        proc.kill()
        proc.wait(10)
        os.close(master)
        api.close()
    assert "\x1b" not in screen  # no escape sequence at all: logs are plain on a terminal
    assert "bad key\\x1b]0;PWNED" in screen
