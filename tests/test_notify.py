"""systemd's notify protocol against a real unix datagram socket, in-process and end to end.

Nothing here sleeps: datagrams are received with a socket timeout, and "nothing else was
sent" is checked by sending a sentinel afterwards (a unix datagram socket keeps order).
"""

from __future__ import annotations

import os
import signal
import socket
import uuid
from pathlib import Path

import pytest
from structlog.testing import capture_logs

import watcher.service.notify
from tests.proc import Daemon, event_pairs
from watcher.service.notify import Notifier, watchdog_loop

SENTINEL = "STATUS=sentinel"


class Listener:
    """A bound datagram socket standing in for systemd."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.path = address
        self.messages: list[str] = []

    def recv_bytes(self, timeout: float = 10.0) -> bytes:
        self.sock.settimeout(timeout)
        return self.sock.recv(65536)

    def recv(self, timeout: float = 10.0) -> str:
        msg = self.recv_bytes(timeout).decode("utf-8")
        self.messages.append(msg)
        return msg

    def recv_until(self, predicate, timeout: float = 15.0) -> str:
        while True:
            msg = self.recv(timeout)
            if predicate(msg):
                return msg

    def drain_until_sentinel(self, notifier: Notifier) -> list[str]:
        """Everything `notifier` sent before now (it sends the sentinel last)."""
        notifier.status(SENTINEL.removeprefix("STATUS="))
        got: list[str] = []
        while (msg := self.recv(5)) != SENTINEL:
            got.append(msg)
        return got

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener(tmp_path: Path):
    lst = Listener(str(tmp_path / "notify.sock"))
    yield lst
    lst.close()


def test_ready_once_reload_then_ready_and_stopping_last(listener):
    n = Notifier.from_env({"NOTIFY_SOCKET": listener.path}, os.getpid())
    n.ready()
    n.ready()
    n.reloading(123456)
    n.ready()
    n.ready()
    n.stopping()
    n.ready()
    n.reloading(999)  # too late: no reload cycle after STOPPING
    n.ready()
    n.stopping()
    assert listener.drain_until_sentinel(n) == [
        "READY=1",
        "RELOADING=1\nMONOTONIC_USEC=123456",
        "READY=1",
        "STOPPING=1",
    ]


def test_status_is_utf8_on_one_line(listener):
    n = Notifier(listener.path)
    n.status("watching 3 runs — état: prêt ✓ 🙂")
    assert listener.recv_bytes(5) == "STATUS=watching 3 runs — état: prêt ✓ 🙂".encode()
    n.status("two\nlines")
    assert listener.recv(5) == "STATUS=two lines"


def test_abstract_socket():
    name = f"@runstep-watcher-test-{uuid.uuid4().hex}"
    lst = Listener(name)
    try:
        n = Notifier.from_env({"NOTIFY_SOCKET": name}, os.getpid())
        n.ready()
        assert lst.recv(5) == "READY=1"
    finally:
        lst.close()


def test_without_notify_socket_everything_is_a_no_op(monkeypatch):
    def no_socket(*args, **kwargs):
        raise AssertionError("a socket was opened without NOTIFY_SOCKET")

    monkeypatch.setattr(watcher.service.notify.socket, "socket", no_socket)
    n = Notifier.from_env({"WATCHDOG_USEC": "30000000"}, os.getpid())
    assert n.watchdog_interval is None
    n.ready()
    n.status("x")
    n.reloading(1)
    n.watchdog()
    n.stopping()
    assert Notifier.from_env({"NOTIFY_SOCKET": ""}, os.getpid()).watchdog_interval is None


def test_watchdog_settings_from_env(listener):
    pid = os.getpid()
    env = {"NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "30000000"}
    assert Notifier.from_env(env, pid).watchdog_interval == 15.0
    assert Notifier.from_env({**env, "WATCHDOG_PID": str(pid)}, pid).watchdog_interval == 15.0
    for bad in ("0", "", "-5", "soon"):
        assert Notifier.from_env({**env, "WATCHDOG_USEC": bad}, pid).watchdog_interval is None
    # the watchdog belongs to another process (our parent, say): not ours to feed
    other = Notifier.from_env({**env, "WATCHDOG_PID": str(pid + 1)}, pid)
    assert other.watchdog_interval is None
    other.watchdog()
    other.ready()
    assert listener.drain_until_sentinel(other) == ["READY=1"]


def test_a_vanished_socket_does_not_raise_and_is_logged_once(tmp_path):
    path = tmp_path / "gone.sock"
    lst = Listener(str(path))
    n = Notifier(str(path), watchdog_usec=1_000_000)
    n.ready()
    assert lst.recv(5) == "READY=1"
    lst.close()
    path.unlink()  # systemd went away
    with capture_logs() as logs:
        n.status("anyone?")
        n.watchdog()
        n.stopping()
    assert [e["log_level"] for e in logs] == ["warning"]
    assert logs[0]["socket"] == str(path)


class FakeTime:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


@pytest.mark.anyio
async def test_watchdog_loop_pings_at_cadence_while_progress_moves_then_stops(listener):
    n = Notifier(listener.path, watchdog_usec=10_000_000)  # WatchdogSec=10: ping every 5 s
    clock = FakeTime()
    counter = 0

    def progress() -> int:
        nonlocal counter
        if clock.t < 1000.0 + 30:  # the poll loop turns for 30 s, then wedges
            counter += 1
        return counter

    await watchdog_loop(
        n, progress=progress, sleep=clock.sleep, stale_after=12.0, now=clock.now, iterations=20
    )
    assert clock.sleeps == [5.0] * 20
    # samples at t = 0, 5, ..., 95 s; the last change is seen at t = 25 s, so pings go out
    # through t = 25 + 12: at 0, 5, ..., 35 (8 pings), then never again
    assert listener.drain_until_sentinel(n) == ["WATCHDOG=1"] * 8


@pytest.mark.anyio
async def test_watchdog_loop_resumes_when_progress_moves_again(listener):
    n = Notifier(listener.path, watchdog_usec=2_000_000)  # ping every 1 s
    clock = FakeTime()
    values = iter([0, 1, 1, 1, 1, 1, 2, 3])  # the initial read, then one per turn

    await watchdog_loop(
        n,
        progress=lambda: next(values),
        sleep=clock.sleep,
        stale_after=1.5,
        now=clock.now,
        iterations=7,
    )
    # turns at t = 0..6 s see 1 (changed), 1, 1, 1, 1, 2 (changed), 3 (changed)
    # pings where the last change is at most 1.5 s old: t = 0, 1, 5, 6
    assert listener.drain_until_sentinel(n) == ["WATCHDOG=1"] * 4


@pytest.mark.anyio
async def test_watchdog_loop_returns_at_once_when_the_watchdog_is_off(listener):
    clock = FakeTime()
    n = Notifier(listener.path)  # no WATCHDOG_USEC
    await watchdog_loop(n, progress=lambda: 0, sleep=clock.sleep, stale_after=1, now=clock.now)
    assert clock.sleeps == []
    assert listener.drain_until_sentinel(n) == []


def test_daemon_speaks_notify_end_to_end(sim, listener, tmp_path):
    s = sim(
        {
            "threads": [
                {
                    "id": "thread_a",
                    "runs": [
                        {"id": "run_1", "timeline": [["queued", 0], ["completed", 2]], "steps": []}
                    ],
                }
            ]
        }
    )
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[api]\nbase_url = "{s.base_url}"\n[poll]\ninterval = 0.05\nmax_interval = 0.2\n'
        f'[state]\npath = "{tmp_path / "s.db"}"\n[[watch]]\nthread_id = "thread_a"\n'
        'run_id = "run_1"\n'
    )
    d = Daemon("run", "--config", str(cfg), NOTIFY_SOCKET=listener.path, WATCHDOG_USEC="200000")
    try:
        listener.recv_until(lambda m: m == "READY=1")
        listener.recv_until(lambda m: m == "WATCHDOG=1")
        listener.recv_until(lambda m: m.startswith("STATUS=watching"))
        d.wait_for(lambda: ("run_1", "queued") in event_pairs(d.events))
        d.proc.send_signal(signal.SIGHUP)
        msg = listener.recv_until(lambda m: m.startswith("RELOADING=1"))
        assert "MONOTONIC_USEC=" in msg
        listener.recv_until(lambda m: m == "READY=1")
        assert d.stop() == 0
        listener.recv_until(lambda m: m == "STOPPING=1")
        # the process has exited: whatever it sent is queued on our socket already
        listener.sock.setblocking(False)
        after = []
        while True:
            try:
                after.append(listener.sock.recv(65536).decode())
            except BlockingIOError:
                break
        assert "READY=1" not in after
    finally:
        d.kill()
