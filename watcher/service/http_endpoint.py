"""The optional HTTP endpoint, started beside the watcher: health, metrics, control API.

`start_http` serves it on the socket bound at start; `apply_http_token` is the reload hook
that swaps the bearer token in place (the old one stops working at once).
"""

from __future__ import annotations

import socket
from functools import partial

import anyio
import anyio.abc
import structlog

from watcher.config.settings import Settings
from watcher.service.http_api import BearerToken
from watcher.service.metrics import Metrics
from watcher.state.astore import AsyncStore
from watcher.watching.app import Watcher

__all__ = ["apply_http_token", "start_http"]

log = structlog.get_logger("watcher.daemon")


async def start_http(
    tg: anyio.abc.TaskGroup,
    watcher: Watcher,
    metrics: Metrics,
    settings: Settings,
    outbox: AsyncStore | None,
    sock: socket.socket,
) -> BearerToken:
    from watcher.delivery.webhook import SINK
    from watcher.service.asgi import ConnectionLimits, serve_asgi
    from watcher.service.http_api import create_http_app
    from watcher.service.http_guards import served_hosts

    http = settings.http
    assert http is not None
    token = BearerToken(http.token.get_secret_value() if http.token else None)
    app = create_http_app(
        watcher,
        metrics,
        token=token,
        webhook_depth=partial(outbox.queue_depth, SINK) if outbox else None,
        hosts=served_hosts(http.host, http.allowed_hosts),
        max_watches=http.max_watches,
    )
    ready = anyio.Event()

    def on_ready(port: int) -> None:
        log.info("http endpoint listening", host=http.host, port=port)
        ready.set()

    tg.start_soon(
        lambda: serve_asgi(
            app,
            host=http.host,
            port=http.port,
            on_ready=on_ready,
            sock=sock,
            limits=ConnectionLimits(
                max_connections=http.max_connections, header_timeout=http.header_timeout
            ),
        ),
        name="http endpoint",
    )
    with anyio.fail_after(10):
        await ready.wait()
    return token


def apply_http_token(token: BearerToken, new: Settings) -> None:
    """SIGHUP: a new [http] token applies at once (the old one stops working); the rest of
    [http] changes at the next restart (`Watcher.reload` names it)."""
    if new.http is None:
        log.warning("reload: [http] was removed; the endpoint stops at the next restart")
        return
    value = new.http.token.get_secret_value() if new.http.token else None
    if value != token.value:
        token.value = value
        log.info("reload: the [http] token was replaced; the old one no longer works")
