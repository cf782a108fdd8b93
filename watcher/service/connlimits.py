"""Bounds on the HTTP endpoint's connections, so idle or slow clients cannot take it down.

Without them one idle TCP connection holds a file descriptor for ever: 1,100 of them
exhaust `ulimit -n 1024`, and asyncio logs a traceback on every failed accept. Here:

- a connection must send a complete request head within `header_timeout` of connecting
  (or of its previous response), else it is closed (slowloris, idle sockets);
- at most `max_connections` are open (plus at most `backlog` just accepted): past it,
  the oldest with no request in flight is closed to make room (the newest is most likely
  a live client, e.g. a probe);
- when accept() fails for lack of descriptors (EMFILE and kin), every connection with no
  request in flight is closed, and the condition is logged once a minute, not per accept.

The HTTP/1.1 parser is h11, with its limit on a request head (`max_header_bytes`).
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["ConnectionLimits", "ExhaustionGuard", "limited_protocol"]

log = structlog.get_logger("watcher.asgi")

_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
LOG_EVERY = 60.0


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_connections: int = 100
    header_timeout: float = 10.0  # connect (or last response) → a complete request head
    keep_alive: float = 5.0  # idle between requests
    max_header_bytes: int = 16 * 1024
    # the kernel's queue of connections not yet accepted, and so how many asyncio accepts
    # in one go before any is looked at: past `max_connections`, each briefly holds a
    # descriptor, so this bounds the overshoot
    backlog: int = 64


def limited_protocol(limits: ConnectionLimits) -> tuple[type[H11Protocol], Callable[[], int]]:
    """An h11 protocol class enforcing `limits` over the connections it makes, and a
    function that closes every connection with no request in flight (how many)."""
    open_: dict[_Limited, None] = {}  # insertion order: oldest first

    class _Limited(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            open_[self] = None
            self._arm()
            live = [p for p in open_ if not p.transport.is_closing()]
            if len(live) > limits.max_connections:
                idle = next((p for p in live if not p.busy()), self)
                idle.close()

        def connection_lost(self, exc: Exception | None) -> None:
            open_.pop(self, None)
            if self._head_timer is not None:
                self._head_timer.cancel()
            super().connection_lost(exc)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def busy(self) -> bool:
            """A request head came in and its response is not complete yet."""
            return self.cycle is not None and not self.cycle.response_complete

        def close(self) -> None:
            if not self.transport.is_closing():
                self.transport.close()

        def _arm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._head_timer = self.loop.call_later(limits.header_timeout, self._head_late)

        def _head_late(self) -> None:
            self._head_timer = None
            if not self.busy():
                self.close()

    def shed_idle() -> int:
        idle = [p for p in open_ if not p.busy() and not p.transport.is_closing()]
        for p in idle:
            p.close()
        return len(idle)

    return _Limited, shed_idle


class ExhaustionGuard:
    """A loop exception handler for accept() out of descriptors on our listening sockets:
    shed idle connections; log once per `LOG_EVERY` seconds with the count in between.
    Anything else goes to the handler that was there before."""

    def __init__(self, loop: asyncio.AbstractEventLoop, shed: Callable[[], int] | None) -> None:
        self.loop = loop
        self.shed = shed
        self.fds: set[int] = set()
        self.previous = loop.get_exception_handler()
        self.last_logged: float | None = None
        self.suppressed = 0

    def install(self, fds: set[int]) -> None:
        self.fds = fds
        self.loop.set_exception_handler(self.handle)

    def uninstall(self) -> None:
        if self.loop.get_exception_handler() == self.handle:
            self.loop.set_exception_handler(self.previous)

    def handle(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc, sock = context.get("exception"), context.get("socket")
        ours = sock is not None and sock.fileno() in self.fds
        if not (ours and isinstance(exc, OSError) and exc.errno in _EXHAUSTED):
            if self.previous is not None:
                self.previous(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        closed = self.shed() if self.shed is not None else 0
        now = loop.time()
        if self.last_logged is not None and now - self.last_logged < LOG_EVERY:
            self.suppressed += 1
            return
        log.error(
            "HTTP endpoint out of resources: cannot accept connections; "
            "closed the idle ones (logged at most once a minute)",
            error=exc.strerror,
            closed_idle=closed,
            repeats_since_last_log=self.suppressed,
        )
        self.last_logged, self.suppressed = now, 0
