"""Pooled API connections over loopback: reused while open, dropped once the server has
closed them while idle (never written to: with no retries left, that request would fail)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import pytest
from anyio.abc import SocketAttribute, SocketStream

from watcher.api.client import ApiClient
from watcher.api.ratelimit import RateGate
from watcher.config.settings import ApiSettings, RetrySettings
from watcher.core.clock import AnyioClock

pytestmark = pytest.mark.anyio

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def server(closes: bool, closed: list[anyio.Event], peers: list[int]):
    """Answers each request; when `closes`, closes the connection after one answer."""

    async def handle(stream: SocketStream) -> None:
        async with stream:
            peers.append(stream.extra(SocketAttribute.remote_port))
            try:
                while True:
                    request = b""
                    while b"\r\n\r\n" not in request:
                        request += await stream.receive()
                    await stream.send(ANSWER)
                    if closes:
                        break
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return
        closed[len(peers) - 1].set()

    return handle


def client(port: int) -> ApiClient:
    clock = AnyioClock()
    return ApiClient(
        ApiSettings(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-test"),
        RetrySettings(attempts=1),
        clock=clock,
        gate=RateGate(clock, rate=1000.0),
        max_connections=4,
    )


@pytest.mark.parametrize("closes", [False, True], ids=["kept_open", "closed_by_server"])
async def test_an_idle_connection_is_reused_unless_the_server_closed_it(closes):
    closed = [anyio.Event() for _ in range(3)]
    peers: list[int] = []
    handle: Callable[[SocketStream], Awaitable[None]] = server(closes, closed, peers)
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        api = client(listener.extra(SocketAttribute.local_port))
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handle)
            for i in range(3):
                assert (await api.get(["threads", "t_1", "runs", "r_1"])).body == {}
                if closes:
                    with anyio.fail_after(5):
                        await closed[i].wait()  # its end is in the client's socket now
            await api.aclose()
            tg.cancel_scope.cancel()
    assert len(set(peers)) == (3 if closes else 1)
