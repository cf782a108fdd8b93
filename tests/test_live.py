"""The live view: the latest of every run and step, with tools, status, elapsed, tokens."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys

from rich.console import Console

from tests.cli import env
from tests.term import run_on_pty, screen
from watcher.core.transitions import Observed
from watcher.watching.live import LiveView


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


def _many_steps(n: int) -> dict:
    steps = [
        {
            "id": f"step_{i:02d}",
            "type": "message_creation",
            "timeline": [["in_progress", i], ["completed", i + 0.5]],
        }
        for i in range(n)
    ]
    steps.append(
        {"id": "step_active", "type": "message_creation", "timeline": [["in_progress", 1]]}
    )
    run = {"id": "run_1", "timeline": [["queued", 0], ["in_progress", 0.1]], "steps": steps}
    return {"threads": [{"id": "thread_a", "runs": [run]}]}


def test_log_lines_print_above_the_view_and_a_long_run_shows_its_latest_steps(sim):
    """stdout and stderr on one terminal of 15 rows, a run of 31 steps, info logs: the final
    screen has each log line once, above one copy of the view, which shows the active and
    latest steps under a "… N earlier steps" line."""
    s = sim(_many_steps(30))
    s.advance(40)
    # the first poll goes through (the view is drawn), the second meets two 500s: warnings
    # ("retrying") logged while the view is up
    s.faults(
        [
            {"kind": "delay", "seconds": 0, "count": 1, "match": "run"},
            {"kind": "status", "status": 500, "count": 2, "match": "run"},
        ]
    )
    code, out = run_on_pty(
        "watch", "thread_a", "run_1", "--timeout", "4", "--log-level", "info",
        "--log-format", "console", OPENAI_BASE_URL=s.base_url, COLUMNS="100", LINES="15",
    )  # fmt: skip
    assert code == 124
    lines = [line for line in screen(out, 100) if line]
    assert sum("watching" in line and "runs=1" in line for line in lines) == 1, lines
    assert sum("retrying" in line for line in lines) == 2, lines
    titles = [i for i, line in enumerate(lines) if line.startswith("run_1 in_progress")]
    assert len(titles) == 1, lines  # one view, no stale copy of it
    view = lines[titles[0] :]
    logs = lines[: titles[0]]
    assert re.match(r"\d{4}-\d\d-\d\dT", logs[0]), lines  # (a long log line wraps)
    assert not any(line.startswith(" step_") for line in logs), lines
    assert not any(re.search(r"\d{4}-\d\d-\d\dT|retrying", line) for line in view), lines
    assert len(view) <= 15
    assert "… 20 earlier steps" in view[2]
    shown = [line.split()[0] for line in view[3:] if line.startswith(" step_")]
    assert shown == ["step_active"] + [f"step_{i:02d}" for i in range(20, 30)]
    assert lines[-1].startswith("runstep-watcher: --timeout 4s ran out")


def test_view_shows_each_long_running_kind_sensibly():
    out = io.StringIO()
    view = LiveView(Console(file=out, width=120), wall=lambda: 1_000_010.0)
    objects = [
        Observed("batch_1", "batch", "in_progress", "", "batch_1", {
            "id": "batch_1", "object": "batch", "status": "in_progress",
            "request_counts": {"total": 250, "completed": 120, "failed": 5},
        }),
        Observed("ftjob-1", "fine_tuning.job", "running", "", "ftjob-1", {
            "id": "ftjob-1", "object": "fine_tuning.job", "status": "running",
            "estimated_finish": 1_000_070,
        }),
        Observed("resp_1", "response", "completed", "", "resp_1", {
            "id": "resp_1", "object": "response", "status": "completed",
            "usage": {"input_tokens": 1840, "output_tokens": 512},
        }),
    ]  # fmt: skip
    with view:
        view.on_observed(objects)
    text = out.getvalue()
    assert view.runs == {}  # not shown as runs with steps
    assert "batch_1" in text and "125/250 (5 failed)" in text and "█" in text
    assert "fine-tuning job" in text and "estimated finish" in text and "in 60s" in text
    assert "resp_1" in text and "completed" in text and "out 512" in text
