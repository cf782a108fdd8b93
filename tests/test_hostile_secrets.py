"""Secrets never reach a log line, escaped or not: the CLI as a process, hostile APIs on
127.0.0.1 that echo what they were sent."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli import run_cli
from tests.hostile import HostileServer, json_answer
from tests.proc import Daemon, event_pairs
from watcher.core.scrub import forms

KEY = "sk-hostile-SECRET-5e4d3c2b1a"
SCENARIO = {
    "epoch": 1732450000,
    "threads": [
        {
            "id": "thread_a",
            "runs": [
                {
                    "id": "run_ok",
                    "timeline": [["queued", 0], ["in_progress", 1], ["completed", 2]],
                    "steps": [],
                }
            ],
        }
    ],
}


def leaked(text: str, secret: str) -> list[str]:
    return [f for f in forms(secret) if f in text]


def test_key_with_a_trailing_newline_is_stripped_and_works(sim):
    """A key read from a Secret mounted as a file ends in a newline: httpx refused the
    header and every retry's warning carried the whole key, escaped."""
    s = sim(SCENARIO, api_key=KEY)
    s.advance(10)
    d = Daemon(
        "watch", "thread_a", "run_ok", "--exit-status",
        OPENAI_BASE_URL=s.base_url, OPENAI_API_KEY=f"  {KEY}\r\n",
    )  # fmt: skip
    try:
        assert d.wait_exit(30) == 0
        assert ("run_ok", "completed") in event_pairs(d.events)
        assert leaked(d.output(), KEY) == []
    finally:
        d.kill()


def test_key_with_control_characters_inside_is_refused_unseen(tmp_path: Path):
    key_file = tmp_path / "key"
    key_file.write_text("sk-abc\x00def-0123456789\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[api]\napi_key_file = "{key_file}"\n[[watch]]\nthread_id = "t"\n')
    for extra in ({}, {"OPENAI_API_KEY": "sk-abc\x1bdef-0123456789"}):
        if extra:  # the environment cannot carry NUL: another control character
            cfg.write_text('[[watch]]\nthread_id = "t"\n')
        r = run_cli("check-config", "--config", str(cfg), **extra)
        assert r.returncode == 78
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "api.api_key" in lines[0] and "control" in lines[0]
        assert "abc" not in r.stderr + r.stdout


def test_escaped_forms_of_every_secret_are_scrubbed_from_logs(tmp_path: Path):
    """An API echoing the secrets in its error message, JSON-escaped and repr'ed: none of
    their forms reaches stderr (the retry warning logs the message before any redaction)."""
    key = "plain\\key\"with'quotes-0123456789"  # not shaped like sk-…: only scrubbing helps
    token = 'tok\\en"0123456789abcdef'
    password = "pa'ss\\word"
    whsec = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="
    echoed = (
        f"you sent {json.dumps(key)} {key!r} {key.encode()!r} {json.dumps(token)} "
        f"{token!r} {password!r} {json.dumps(password)} {whsec!r}"
    )

    def answer(request, sock, stop):
        sock.sendall(json_answer(500, {"error": {"message": echoed}}))

    with HostileServer(answer) as api:
        proxy_password = password.replace("\\", "%5C").replace("'", "%27")
        cfg = tmp_path / "c.toml"
        cfg.write_text(
            "\n".join(
                [
                    "[api]",
                    f'base_url = "{api.url}/v1"',
                    f'proxy = "http://user:{proxy_password}@127.0.0.1:{api.port}"',
                    "[retry]",
                    "attempts = 3",
                    "initial_delay = 0.01",
                    "max_delay = 0.02",
                    "[state]",
                    f'path = "{tmp_path / "s.db"}"',
                    "[http]",
                    'listen = "127.0.0.1:0"',
                    "[webhook]",
                    'url = "http://127.0.0.1:9/hook"',
                    "[[watch]]",
                    'thread_id = "thread_a"',
                    'run_id = "run_a"',
                ]
            )
            + "\n"
        )
        d = Daemon(
            "run", "--config", str(cfg), OPENAI_API_KEY=key,
            RUNSTEP_WATCHER_HTTP_TOKEN=token, RUNSTEP_WATCHER_WEBHOOK_SECRET=whsec,
        )  # fmt: skip
        try:
            d.wait_log("poll failed")
            d.stop()
        finally:
            d.kill()
    out = d.output()
    assert "retrying" in out and "you sent" in out
    for secret in (key, token, password, whsec):
        assert leaked(out, secret) == [], secret
