"""The HTTP endpoint's listening socket, bound before anything else starts.

Binding it first turns "the port is taken" into one clear error and an exit code, before
any poll, rather than a traceback from inside the server once the daemon is running.
"""

from __future__ import annotations

import errno
import socket

__all__ = ["ListenError", "listen_socket"]


class ListenError(Exception):
    """The [http] listen address cannot be bound; `in_use` when another process holds it."""

    def __init__(self, message: str, *, in_use: bool) -> None:
        super().__init__(message)
        self.in_use = in_use


def listen_socket(
    host: str, port: int, *, what: str = "[http] listen", backlog: int = 64
) -> socket.socket:
    """A listening TCP socket on host:port (port 0: any free port), or `ListenError`.

    A short backlog: asyncio accepts a whole backlog at once, before any connection cap
    can act (see `watcher.service.connlimits`)."""
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, address = infos[0]
        return socket.create_server(address, family=family, backlog=backlog)
    except OSError as exc:
        in_use = exc.errno == errno.EADDRINUSE
        reason = "address already in use" if in_use else (exc.strerror or str(exc))
        raise ListenError(f"{what} {shown}: {reason}", in_use=in_use) from None
