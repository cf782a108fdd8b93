"""An API that answers nothing, or asks for a long pause, is not a stuck daemon.

The CLI runs as a process against a hostile server on 127.0.0.1 (one that never answers,
or the simulator answering 429 with `Retry-After: 600`): the watchdog keeps being fed,
/livez stays 200, /status shows the trouble, and SIGTERM ends the process in seconds.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.mute import MuteServer
from tests.proc import Daemon
from tests.test_notify import Listener

# WatchdogSec=0.5: a ping every 0.25 s, none once the loop has not turned for 3.25 s
WATCHDOG_USEC = "500000"


@pytest.fixture
def mute() -> Iterator[MuteServer]:
    server = MuteServer()
    yield server
    server.close()


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[Listener]:
    lst = Listener(str(tmp_path / "notify.sock"))
    yield lst
    lst.close()


def config(tmp_path: Path, base_url: str, runs: int, extra: str = "") -> Path:
    text = f'[api]\nbase_url = "{base_url}"\n[state]\npath = "{tmp_path / "state.db"}"\n'
    text += extra
    for i in range(runs):
        text += f'[[watch]]\nthread_id = "thread_1"\nrun_id = "run_{i:03d}"\n'
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def http_port(d: Daemon) -> int:
    d.wait_log("http endpoint listening")
    for line in d.stderr:
        if "http endpoint listening" in line:
            return int(json.loads(line)["port"])
    raise AssertionError("no port logged")


def stop_timed(d: Daemon) -> tuple[int, float]:
    started = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    code = d.wait_exit(15)
    return code, time.monotonic() - started


def test_sigterm_exits_in_seconds_while_every_request_hangs(tmp_path, mute):
    """24 runs, every slot waiting on an answer that never comes (api timeout 30 s)."""
    d = Daemon("run", "--config", str(config(tmp_path, mute.base_url, 24)))
    try:
        mute.wait_connections(8)  # max_concurrency: every slot waits
        code, seconds = stop_timed(d)
        print(f"SIGTERM to exit with every request hanging: {seconds:.2f} s")
        assert code == 0, d.output()
        assert seconds < 8.0, f"took {seconds:.1f} s to stop"  # promised: 5 s; load margin
        assert "Traceback" not in d.output()
    finally:
        d.kill()


def watchdog_outlives_the_stale_window(d: Daemon, listener: Listener, busy_since: float) -> None:
    """WATCHDOG=1 still arrives 4 s after every slot began waiting (stale after 3.25 s)."""
    listener.recv_until(
        lambda m: m == "WATCHDOG=1" and time.monotonic() > busy_since + 4.0, timeout=5
    )


def test_watchdog_and_livez_stay_up_while_the_api_answers_nothing(tmp_path, mute, listener):
    extra = '[poll]\nmax_concurrency = 2\n[http]\nlisten = "127.0.0.1:0"\n'
    cfg = config(tmp_path, mute.base_url, 3, extra)
    d = Daemon(
        "run", "--config", str(cfg), NOTIFY_SOCKET=listener.path, WATCHDOG_USEC=WATCHDOG_USEC
    )
    try:
        url = f"http://127.0.0.1:{http_port(d)}"
        listener.recv_until(lambda m: m == "READY=1")
        mute.wait_connections(2)
        watchdog_outlives_the_stale_window(d, listener, time.monotonic())
        livez = httpx.get(f"{url}/livez")
        assert livez.status_code == 200, livez.text
        status = httpx.get(f"{url}/status").json()
        assert status["alive"] is True
        assert status["polls_in_flight"] == 2
        assert status["oldest_poll_in_flight_seconds"] >= 4.0
        assert status["upstream"]["last_success"] is None
    finally:
        d.kill()  # the stop is tested above


def test_watchdog_and_livez_stay_up_through_a_long_429_pause(tmp_path, sim, listener):
    s = sim(
        {
            "threads": [
                {
                    "id": "thread_1",
                    "runs": [
                        {"id": f"run_{i:03d}", "timeline": [["in_progress", 0]]} for i in range(3)
                    ],
                }
            ]
        }
    )
    s.faults([{"kind": "status", "status": 429, "retry_after": 600, "count": 100}])
    extra = '[poll]\nmax_concurrency = 2\n[http]\nlisten = "127.0.0.1:0"\n'
    cfg = config(tmp_path, s.base_url, 3, extra)
    d = Daemon(
        "run", "--config", str(cfg), NOTIFY_SOCKET=listener.path, WATCHDOG_USEC=WATCHDOG_USEC
    )
    try:
        url = f"http://127.0.0.1:{http_port(d)}"
        listener.recv_until(lambda m: m == "READY=1")
        d.wait_log("retrying")  # the 429 came: every poll now waits out the pause
        watchdog_outlives_the_stale_window(d, listener, time.monotonic())
        assert httpx.get(f"{url}/livez").status_code == 200
        status = httpx.get(f"{url}/status").json()
        assert status["polls_in_flight"] == 2
        assert 500 < status["api_paused_for_seconds"] <= 600
        assert status["upstream"]["consecutive_failures"] >= 1
    finally:
        d.kill()
