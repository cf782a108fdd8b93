"""Serve the simulator on 127.0.0.1 until cancelled (uvicorn, through `watcher.service.asgi`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from watcher.service.asgi import serve_asgi

__all__ = ["serve"]


def _base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/v1" if ":" in host else f"http://{host}:{port}/v1"


async def serve(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """`on_ready` gets the base URL, `http://127.0.0.1:PORT/v1`, with the bound port."""

    def ready(bound: int) -> None:
        if on_ready is not None:
            on_ready(_base_url(host, bound))

    await serve_asgi(app, host=host, port=port, on_ready=ready)
