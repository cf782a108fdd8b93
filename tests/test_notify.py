"""systemd's notify protocol against a real unix datagram socket, in-process and end to end."""

from __future__ import annotations

import os
import signal
import socket
import uuid
from pathlib import Path

import pytest

from tests.proc import Daemon, event_pairs
from watcher.daemon import keep_supervisor_informed
from watcher.notify import Notifier


class Listener:
    """A bound datagram socket standing in for systemd."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + path[1:] if path.startswith("@") else path)
        self.sock.settimeout(10)
        self.path = path
        self.messages: list[str] = []

    def recv(self, timeout: float = 10.0) -> str:
        self.sock.settimeout(timeout)
        msg = self.sock.recv(65536).decode("utf-8")
        self.messages.append(msg)
        return msg

    def recv_until(self, predicate, timeout: float = 15.0) -> str:
        while True:
            msg = self.recv(timeout)
            if predicate(msg):
                return msg

    def nothing_within(self, seconds: float) -> bool:
        try:
            self.recv(seconds)
        except TimeoutError:
            return True
        return False

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener(tmp_path: Path):
    lst = Listener(str(tmp_path / "notify.sock"))
    yield lst
    lst.close()


def test_ready_once_status_utf8_reload_and_stopping_last(listener):
    n = Notifier(listener.path)
    n.ready()
    n.ready()
    n.status("watching 3 runs — état: prêt ✓")
    n.reloading(123456)
    n.ready()
    n.stopping()
    n.ready()
    n.status("after stopping")
    got = [listener.recv(2) for _ in range(6)]
    assert got == [
        "READY=1",
        "STATUS=watching 3 runs — état: prêt ✓",
        "RELOADING=1\nMONOTONIC_USEC=123456",
        "READY=1",
        "STOPPING=1",
        "STATUS=after stopping",
    ]
    assert listener.nothing_within(0.2)


def test_abstract_socket():
    name = f"@runstep-watcher-test-{uuid.uuid4().hex}"
    lst = Listener(name)
    try:
        Notifier(name).ready()
        assert lst.recv(2) == "READY=1"
    finally:
        lst.close()


def test_no_socket_is_a_no_op_and_a_vanished_socket_does_not_raise(tmp_path):
    n = Notifier.from_env({}, os.getpid())
    n.ready()
    n.watchdog()
    assert n.sent == []
    gone = Notifier(str(tmp_path / "nobody-listens.sock"))
    gone.ready()
    gone.status("x")
    assert gone.sent == []


def test_watchdog_settings_from_env():
    pid = os.getpid()
    env = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "30000000"}
    assert Notifier.from_env(env, pid).watchdog_interval == 15.0
    assert Notifier.from_env({**env, "WATCHDOG_PID": str(pid)}, pid).watchdog_interval == 15.0
    assert Notifier.from_env({**env, "WATCHDOG_PID": str(pid + 1)}, pid).watchdog_interval is None
    assert Notifier.from_env({"WATCHDOG_USEC": "30000000"}, pid).watchdog_interval is None


@pytest.mark.anyio
async def test_watchdog_pings_while_progress_moves_and_stops_when_it_wedges(listener):
    n = Notifier(listener.path, watchdog_usec=100_000)  # ping every 0.05 s
    counter = 0

    def progress() -> int:
        nonlocal counter
        if pings() < 5:
            counter += 1  # the poll loop is turning
        return counter  # then it wedges: the counter stops

    def pings() -> int:
        return sum(m == "WATCHDOG=1" for m in n.sent)

    await keep_supervisor_informed(
        n, progress=progress, status=lambda: "ok", stale_after=0.2, iterations=40
    )
    sent = [m for m in n.sent if m.startswith("WATCHDOG")]
    # pings while moving, then a few within the stale window, then none: 40 turns in all
    assert 5 <= len(sent) < 20
    assert n.sent[0] == "WATCHDOG=1" and n.sent[1] == "STATUS=ok"


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
        assert listener.recv_until(lambda m: m == "READY=1")
        listener.recv_until(lambda m: m == "WATCHDOG=1")
        listener.recv_until(lambda m: m.startswith("STATUS=watching"))
        d.wait_for(lambda: ("run_1", "queued") in event_pairs(d.events))
        d.proc.send_signal(signal.SIGHUP)
        msg = listener.recv_until(lambda m: m.startswith("RELOADING=1"))
        assert "MONOTONIC_USEC=" in msg
        assert listener.recv_until(lambda m: "READY" in m or "WATCHDOG" not in m) == "READY=1"
        assert d.stop() == 0
        listener.recv_until(lambda m: m == "STOPPING=1")
        after = []
        while not listener.nothing_within(0.3):
            after.append(listener.messages[-1])
        assert "READY=1" not in after
    finally:
        d.kill()
