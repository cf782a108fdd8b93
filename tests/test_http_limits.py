"""Idle and slow connections cannot take the HTTP endpoint down: the daemon as a process
with a lowered descriptor limit, raw sockets and HTTP over loopback."""

from __future__ import annotations

import resource
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from tests.proc import Daemon
from tests.test_production import free_port

BASE = "http://127.0.0.1:9/v1"  # loopback: no key needed; nothing is watched


@contextmanager
def daemon(tmp_path: Path, nofile: int, http_extra: str = "") -> Iterator[tuple[Daemon, int]]:
    port = free_port()
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[state]\npath = "{tmp_path / "s.db"}"\n[http]\nlisten = "127.0.0.1:{port}"\n{http_extra}'
    )
    d = Daemon("run", "--config", str(cfg), OPENAI_BASE_URL=BASE)
    try:
        resource.prlimit(d.proc.pid, resource.RLIMIT_NOFILE, (nofile, nofile))
        d.wait_log("http endpoint listening")
        yield d, port
    finally:
        d.kill()


def idle_connections(stack: ExitStack, port: int, n: int) -> list[socket.socket]:
    """`n` connections that never send a byte (the kernel completes them; the daemon may
    not have accepted them yet)."""
    out = []
    for _ in range(n):
        s = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))
        out.append(s)
    return out


def test_hundreds_of_idle_connections_leave_livez_answering(tmp_path):
    with daemon(tmp_path, nofile=256) as (d, port), ExitStack() as stack:
        idle_connections(stack, port, 300)  # more than the descriptors the daemon has
        r = httpx.get(f"http://127.0.0.1:{port}/livez", timeout=20)
        assert r.status_code == 200
        assert not [line for line in d.stderr if "Too many open files" in line]


def test_out_of_descriptors_sheds_idle_connections_and_logs_once(tmp_path):
    # a connection cap above what the descriptor limit allows: accept() itself fails
    with (
        daemon(tmp_path, nofile=64, http_extra="max_connections = 1000\n") as (d, port),
        ExitStack() as stack,
    ):
        idle_connections(stack, port, 100)
        r = httpx.get(f"http://127.0.0.1:{port}/livez", timeout=20)
        assert r.status_code == 200
        # several accept() rounds failed on the way: one line, no tracebacks
        lines = [line for line in d.stderr if "out of resources" in line]
        assert len(lines) == 1, d.stderr[-5:]
        assert not [line for line in d.stderr if "Traceback" in line]
