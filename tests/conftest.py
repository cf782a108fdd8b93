"""Shared fixtures: the simulator served on 127.0.0.1 from a background event loop."""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from anyio.from_thread import start_blocking_portal

from watcher.simulator.app import ManualClock, RealClock, create_app
from watcher.simulator.scenario import Scenario, parse_scenario
from watcher.simulator.server import serve


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class SimHandle:
    """A simulator serving on a free port; its control routes as plain methods."""

    def __init__(self, scenario: Scenario, *, manual_clock: bool, **options: Any) -> None:
        self.app = create_app(
            scenario, clock=ManualClock() if manual_clock else RealClock(), **options
        )
        self.base_url = ""
        ready = threading.Event()

        def on_ready(url: str) -> None:
            self.base_url = url
            ready.set()

        self._portal_cm = start_blocking_portal()
        portal = self._portal_cm.__enter__()
        self._future = portal.start_task_soon(lambda: serve(self.app, on_ready=on_ready))
        if not ready.wait(10):
            raise RuntimeError("the simulator did not start")
        self.control = self.base_url.removesuffix("/v1") + "/_sim"

    def advance(self, seconds: float) -> float:
        r = httpx.post(f"{self.control}/advance", json={"seconds": seconds})
        return float(r.json()["now"])

    def faults(self, specs: list[dict[str, Any]]) -> None:
        httpx.post(f"{self.control}/faults", json=specs).raise_for_status()

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.control}/stats").json())

    def transitions(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.control}/transitions").json()["transitions"])

    def close(self) -> None:
        self._future.cancel()
        with contextlib.suppress(concurrent.futures.CancelledError):
            self._future.result(10)
        self._portal_cm.__exit__(None, None, None)


@pytest.fixture
def sim() -> Iterator[Any]:
    handles: list[SimHandle] = []

    def start(
        scenario: dict[str, Any] | Scenario, *, manual_clock: bool = True, **options: Any
    ) -> SimHandle:
        spec = scenario if isinstance(scenario, Scenario) else parse_scenario(scenario)
        handle = SimHandle(spec, manual_clock=manual_clock, **options)
        handles.append(handle)
        return handle

    yield start
    for handle in handles:
        handle.close()
