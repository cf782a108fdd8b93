"""Guards in front of the HTTP endpoint: only our own Host and Origin, JSON writes, small bodies.

A control API on loopback without a token is reachable from any web page the local user
opens: a cross-site `text/plain` POST (CSRF), or a hostile name that resolves to 127.0.0.1
(DNS rebinding). So, before any route runs:

- `Host` must name the listen address, `localhost`, `127.0.0.1`, `::1` or a name in
  `[http] allowed_hosts` (403); checked when listening on loopback or when
  `allowed_hosts` is set. No `Host` at all (an HTTP/1.0 health checker) is let through:
  a browser always sends one.
- An `Origin` (what browsers send on cross-site requests) must be the request's own
  scheme://host:port (403): the endpoint serves no pages, so no other page may call it.
- Writes (POST, PUT, PATCH) must be `application/json` (415).
- A request body is read at most `MAX_BODY` bytes, with or without `Content-Length`, then
  handed to the route; past it, 413.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["MAX_BODY", "RequestGuard", "bearer_matches", "served_hosts"]

MAX_BODY = 64 * 1024
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_WRITES = frozenset({"POST", "PUT", "PATCH"})
_NO_BODY = frozenset({"GET", "HEAD", "OPTIONS"})


def bearer_matches(header: str, token: str) -> bool:
    """`Authorization: Bearer <token>`, the scheme in any case (RFC 9110), in constant time."""
    scheme, _, given = header.strip().partition(" ")
    ok = hmac.compare_digest(given.strip().encode(), token.encode())
    return ok and scheme.lower() == "bearer"


def served_hosts(listen_host: str, allowed: Iterable[str]) -> frozenset[str] | None:
    """The Host names to accept: None (any) when listening beyond loopback with no
    `allowed_hosts` (a token guards it then, and clients name it in many ways)."""
    allowed = tuple(allowed)
    try:
        loopback = listen_host == "localhost" or ipaddress.ip_address(listen_host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not allowed:
        return None
    return frozenset({listen_host.lower(), *LOOPBACK_NAMES, *(h.lower() for h in allowed)})


def _hostname(host: str) -> str:
    """`example.com:9464` → `example.com`; `[::1]:9464` → `::1`; lower case."""
    try:
        return (urlsplit(f"//{host}").hostname or "").rstrip(".")
    except ValueError:
        return "\x00invalid"


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message


class RequestGuard:
    """Pure ASGI middleware; `hosts=None` checks no Host (beyond loopback, no list set)."""

    def __init__(self, app: ASGIApp, *, hosts: Iterable[str] | None) -> None:
        self.app = app
        self.hosts = None if hosts is None else frozenset(h.lower() for h in hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            self._check_headers(scope)
            if scope["method"] not in _NO_BODY:
                receive = _replay(await _read_body(scope, receive), receive)
        except _Refused as refused:
            await _answer(send, refused.status, refused.message)
            return
        await self.app(scope, receive, send)

    def _check_headers(self, scope: Scope) -> None:
        headers = Headers(scope=scope)
        host = headers.get("host")
        if self.hosts is not None and host is not None and _hostname(host) not in self.hosts:
            raise _Refused(403, "this Host is not served here (see [http] allowed_hosts)")
        origin = headers.get("origin")
        if origin is not None:
            parts = urlsplit(origin)
            same = host is not None and parts.netloc.lower() == host.lower()
            if parts.scheme not in ("http", "https") or not same:
                raise _Refused(403, "cross-origin requests are refused")
        if scope["method"] in _WRITES:
            media = headers.get("content-type", "").split(";")[0].strip().lower()
            if media != "application/json":
                raise _Refused(415, "the body must be application/json")


async def _read_body(scope: Scope, receive: Receive) -> bytes:
    length = Headers(scope=scope).get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise _Refused(413, f"the body is larger than {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise _Refused(413, f"the body is larger than {MAX_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, then: Receive) -> Receive:
    """A `receive` that gives the body read already, then what the client does next."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await then()

    return receive


async def _answer(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": {"message": message, "field": None}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
