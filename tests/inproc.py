"""Helpers for tests that run the watcher's parts in-process against the simulator over
`httpx.ASGITransport`: a client that records its requests, and a line sink that keeps
what it is given (the stdout sink, minus the stream)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx

from tests.fakes import FakeClock
from watcher.api.client import ApiClient
from watcher.api.ratelimit import RateGate
from watcher.config.settings import ApiSettings, RetrySettings


class Lines:
    name = "stdout"

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def write(self, bodies: Sequence[str]) -> None:
        self.events.extend(json.loads(b) for b in bodies)


def sim_client(app: Any, clock: FakeClock | None = None) -> tuple[ApiClient, list[httpx.Request]]:
    """An `ApiClient` to `app` (one attempt, no budget), and the requests it sends."""
    seen: list[httpx.Request] = []
    inner = httpx.ASGITransport(app=app)

    class Recording(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return await inner.handle_async_request(request)

    clock = clock or FakeClock()
    client = ApiClient(
        ApiSettings(base_url="http://127.0.0.1/v1"),
        RetrySettings(attempts=1),
        clock=clock,
        gate=RateGate(clock, rate=1e6),
        transport=Recording(),
    )
    return client, seen
