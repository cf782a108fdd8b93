"""Serve an ASGI app with uvicorn inside the current event loop, until cancelled.

The host process owns signals and stdout: uvicorn installs no signal handlers, configures
no logging (its loggers propagate to whatever the process set up, never to stdout by
itself) and writes no access log. With `limits` (the daemon's endpoint), connections are
bounded as `watcher.service.connlimits` describes; without (the simulator, which the benchmark
drives with many connections), uvicorn's defaults hold. Either way a failed accept() for
lack of descriptors is logged once a minute, not once per attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import uvicorn

from watcher.service.connlimits import ConnectionLimits, ExhaustionGuard, limited_protocol

__all__ = ["ConnectionLimits", "serve_asgi"]

_SHUTDOWN_SECONDS = 5.0  # a bound on the graceful close after a cancel


class _Server(uvicorn.Server):
    """A uvicorn server that says when it listens and leaves signals alone."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.up = anyio.Event()  # set once it listens, or once it gave up

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn 0.54 swaps in its own SIGINT/SIGTERM handlers here (main thread only)
        # and re-raises the captured signals on exit: the host process handles signals.
        yield

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets=sockets)
        self.up.set()

    def port(self) -> int:
        """The bound port (with port 0, the one the OS picked)."""
        return int(self.servers[0].sockets[0].getsockname()[1])


async def serve_asgi(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    on_ready: Callable[[int], None] | None = None,
    sock: socket.socket | None = None,
    limits: ConnectionLimits | None = None,
) -> None:
    """Serve `app` until cancelled; `on_ready` gets the bound port once it listens (port 0
    picks a free one). `OSError` when it cannot listen or stops by itself. With `sock` (a
    socket already listening), serve on it instead of binding host:port."""

    bounded: dict[str, Any] = {}
    shed = None
    if limits is not None:
        protocol, shed = limited_protocol(limits)
        bounded = {
            "http": protocol,
            "timeout_keep_alive": limits.keep_alive,
            "h11_max_incomplete_event_size": limits.max_header_bytes,
            "backlog": limits.backlog,
        }
    guard = ExhaustionGuard(asyncio.get_running_loop(), shed)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        server_header=False,
        timeout_graceful_shutdown=1,  # then in-flight requests (a delay fault) are cancelled
        **bounded,
    )
    server = _Server(config)
    stopped = anyio.Event()
    exit_code: list[object] = []

    async def run() -> None:
        try:
            # shielded: a cancel only sets should_exit, and uvicorn closes its sockets and
            # connections itself within a tick (0.1 s) plus the graceful timeout
            with anyio.CancelScope(shield=True):
                await server.serve(sockets=[sock] if sock is not None else None)
        except SystemExit as exc:  # uvicorn's answer to a port it cannot bind
            exit_code.append(exc.code)
        finally:
            server.up.set()
            stopped.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run, name=f"http {host}:{port}")
        try:
            await server.up.wait()
            if server.started and not stopped.is_set():
                guard.install({s.fileno() for srv in server.servers for s in srv.sockets})
                if on_ready is not None:
                    on_ready(server.port())
            await stopped.wait()
        finally:
            server.should_exit = True
            with anyio.move_on_after(_SHUTDOWN_SECONDS, shield=True):
                await stopped.wait()
            server.force_exit = True
            guard.uninstall()
    if exit_code or not server.started:
        raise OSError(f"cannot listen on {host}:{port}")
    raise OSError(f"the HTTP server on {host}:{port} stopped by itself")
