"""Shared fixtures: `anyio_backend`, and `sim`, the simulator served on 127.0.0.1 from a
background thread with its own event loop."""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from anyio.from_thread import start_blocking_portal

from watcher.simulator.app import ManualClock, RealClock, create_app
from watcher.simulator.scenario import Scenario, parse_scenario
from watcher.simulator.server import serve

START_TIMEOUT = 10.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class SimHandle:
    """A simulator serving on a free port of 127.0.0.1; its control routes as methods."""

    def __init__(
        self,
        scenario: dict[str, Any] | Scenario,
        *,
        manual_clock: bool = True,
        api_key: str | None = None,
        api_key_header: str = "authorization",
        required_query: dict[str, str] | None = None,
        wrap: Callable[[Any], Any] | None = None,
    ) -> None:
        """`wrap`: an ASGI wrapper around the app as served (a request log, say)."""
        spec = scenario if isinstance(scenario, Scenario) else parse_scenario(scenario)
        self.app = create_app(
            spec,
            clock=ManualClock() if manual_clock else RealClock(),
            api_key=api_key,
            api_key_header=api_key_header,
            required_query=required_query,
        )
        self.base_url = ""
        served = self.app if wrap is None else wrap(self.app)
        ready = threading.Event()

        def on_ready(url: str) -> None:
            self.base_url = url
            ready.set()

        self._portal_cm = start_blocking_portal(name="simulator")
        portal = self._portal_cm.__enter__()
        self._future = portal.start_task_soon(lambda: serve(served, on_ready=on_ready))
        self._future.add_done_callback(lambda _: ready.set())  # it failed: no need to wait
        if not ready.wait(START_TIMEOUT) or not self.base_url:
            failed = self._future.done() and not self._future.cancelled()
            cause = self._future.exception() if failed else None
            self._future.cancel()
            self._portal_cm.__exit__(None, None, None)
            raise RuntimeError("the simulator did not start") from cause
        self.control = self.base_url.removesuffix("/v1") + "/_sim"

    def advance(self, seconds: float) -> float:
        """Move the manual clock; the new clock time."""
        r = httpx.post(f"{self.control}/advance", json={"seconds": seconds})
        r.raise_for_status()
        return float(r.json()["now"])

    def faults(self, specs: list[dict[str, Any]]) -> None:
        httpx.post(f"{self.control}/faults", json=specs).raise_for_status()

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.control}/stats").raise_for_status().json())

    def transitions(self) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.control}/transitions").raise_for_status()
        return list(r.json()["transitions"])

    def close(self) -> None:
        """Stop serving (cancel, and wait for uvicorn to close) and end the loop's thread."""
        self._future.cancel()
        with contextlib.suppress(concurrent.futures.CancelledError):
            self._future.result(START_TIMEOUT)
        self._portal_cm.__exit__(None, None, None)


@pytest.fixture
def sim() -> Iterator[Callable[..., SimHandle]]:
    """A factory starting simulators; every one started is stopped at teardown."""
    handles: list[SimHandle] = []

    def start(
        scenario: dict[str, Any] | Scenario,
        *,
        manual_clock: bool = True,
        api_key: str | None = None,
        api_key_header: str = "authorization",
        required_query: dict[str, str] | None = None,
        wrap: Callable[[Any], Any] | None = None,
    ) -> SimHandle:
        handle = SimHandle(
            scenario,
            manual_clock=manual_clock,
            api_key=api_key,
            api_key_header=api_key_header,
            required_query=required_query,
            wrap=wrap,
        )
        handles.append(handle)
        return handle

    yield start
    for handle in reversed(handles):
        handle.close()
