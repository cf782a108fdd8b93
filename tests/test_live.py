"""The live view: the latest of every run and step, with tools, status, elapsed, tokens."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys

from rich.console import Console

from tests.cli import env
from watcher.live import LiveView
from watcher.transitions import Observed


def obj(kind, oid, status, **data):
    run_id = data.pop("run_id", oid)
    full = {"id": oid, "object": kind, "status": status, **data}
    return Observed(oid, kind, status, "thread_1", run_id, full)


def test_view_shows_latest_status_even_when_no_event_was_due():
    out = io.StringIO()
    view = LiveView(Console(file=out, width=120), wall=lambda: 1_000_010.0)
    step = {
        "run_id": "run_1",
        "type": "tool_calls",
        "created_at": 1_000_000,
        "step_details": {
            "type": "tool_calls",
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "get_weather"}}],
        },
    }
    with view:
        view.on_observed(
            [
                obj("thread.run", "run_1", "requires_action", created_at=1_000_000),
                obj("thread.run.step", "step_1", "in_progress", **step),
            ]
        )
        # back to in_progress: no event (already reported), but the view must follow
        view.on_observed(
            [
                obj("thread.run", "run_1", "in_progress", created_at=1_000_000),
                obj(
                    "thread.run.step",
                    "step_1",
                    "completed",
                    completed_at=1_000_004,
                    usage={"total_tokens": 42},
                    **step,
                ),
            ]
        )
    text = out.getvalue()
    last = text[text.rindex("run_1 ") :]
    assert "run_1 in_progress" in last
    assert "tool_calls: get_weather" in last and "completed" in last
    assert "4s" in last and "42" in last


def test_watch_on_a_terminal_draws_the_view(sim):
    s = sim(
        {
            "threads": [
                {
                    "id": "thread_a",
                    "runs": [
                        {
                            "id": "run_1",
                            "timeline": [["queued", 0], ["completed", 1]],
                            "steps": [
                                {
                                    "id": "step_1",
                                    "type": "message_creation",
                                    "timeline": [["in_progress", 0], ["completed", 1]],
                                }
                            ],
                        }
                    ],
                }
            ]
        }
    )
    s.advance(2)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "watcher", "watch", "thread_a", "run_1"],
        stdout=slave,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        env=env(OPENAI_BASE_URL=s.base_url, COLUMNS="100"),
    )
    os.close(slave)
    chunks = []
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        assert proc.wait(30) == 0
    finally:
        proc.kill()
        proc.wait(10)
        os.close(master)
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert "run_1" in screen and "step_1" in screen and "completed" in screen
    assert '"object"' not in screen  # a view, not JSON lines
