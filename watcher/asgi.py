"""Serve an ASGI app with uvicorn inside our own event loop (no signal handlers of its own,
nothing on stdout), until cancelled."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import uvicorn

__all__ = ["serve_asgi"]


class _Server(uvicorn.Server):
    """Our process owns signals: uvicorn must not install or capture any."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_asgi(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    on_ready: Callable[[int], None] | None = None,
) -> None:
    """Run until cancelled; `on_ready` gets the bound port (port 0 picks a free one)."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        server_header=False,
    )
    server = _Server(config)
    done = anyio.Event()
    failed: list[BaseException] = []

    async def run_server() -> None:
        try:
            # shielded: a cancel sets should_exit below and uvicorn closes its sockets itself
            with anyio.CancelScope(shield=True):
                await server.serve()
        except SystemExit as exc:  # uvicorn exits the process when it cannot bind
            failed.append(exc)
        finally:
            done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run_server, name=f"http {host}:{port}")
        try:
            while not server.started:
                if done.is_set():
                    raise OSError(f"cannot listen on {host}:{port}")
                await anyio.sleep(0.01)
            if on_ready is not None:
                on_ready(int(server.servers[0].sockets[0].getsockname()[1]))
            await done.wait()
            if failed or not server.should_exit:
                raise OSError(f"the HTTP server on {host}:{port} stopped")
        finally:
            server.should_exit = True
            with anyio.move_on_after(5, shield=True):
                await done.wait()
