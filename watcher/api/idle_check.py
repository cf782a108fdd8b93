"""A cheaper answer to the connection pool's "has this idle connection been closed?".

Before each request, and again when a response is closed, httpcore's pool asks every idle
connection whether its socket is readable (a server that closed it). Through AnyIO, each
question builds the socket's whole attribute table first, a `getpeername()` system call
included: with eight connections that is about sixteen tables per request, about a tenth
of the API client's CPU (`bench/versions.md`). The streams here keep their raw socket and ask
`poll()` only, as httpcore itself does once it has the socket.

httpx has no parameter for the network backend yet (encode/httpx#3749 proposes one), so
`lighten` sets it on the transport's pool when the pool has the attribute, and leaves a
transport it does not recognise as it is: requests then take httpcore's usual path.
"""

# httpcore's interface passes its timeouts as parameters:
# ruff: noqa: ASYNC109

from __future__ import annotations

import select
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

__all__ = ["lighten"]


def _readable(sock: Any) -> bool:
    """httpcore's test: data (or the end) waiting, or a socket closed already."""
    fd = -1 if sock is None else sock.fileno()
    if fd < 0:
        return True
    p = select.poll()
    p.register(fd, select.POLLIN)
    return bool(p.poll(0))


class _Stream(httpcore.AsyncNetworkStream):
    """The backend's stream, its raw socket looked up once."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._sock = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        # no poll() (Windows): httpcore's own answer
        if info == "is_readable" and self._sock is not None and hasattr(select, "poll"):
            return _readable(self._sock)
        return self._inner.get_extra_info(info)


class _Backend(httpcore.AsyncNetworkBackend):
    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _Stream(stream)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def lighten(transport: httpx.AsyncHTTPTransport) -> httpx.AsyncHTTPTransport:
    """The transport, its pool's connections opened through `_Backend` where possible."""
    pool = getattr(transport, "_pool", None)
    inner = getattr(pool, "_network_backend", None)
    if isinstance(pool, httpcore.AsyncConnectionPool) and isinstance(
        inner, httpcore.AsyncNetworkBackend
    ):
        pool._network_backend = _Backend(inner)
    return transport
