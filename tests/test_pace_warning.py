"""When the request budget or the concurrency cap stretches active runs' polls past twice
their interval for a while, one warning says so with the numbers and the key; a gauge
exports the effective interval."""

from __future__ import annotations

import anyio
import httpx
import pytest
from prometheus_client import generate_latest
from structlog.testing import capture_logs

from watcher.api.client import ApiClient
from watcher.api.ratelimit import RateGate
from watcher.config.settings import Settings
from watcher.core.clock import AnyioClock
from watcher.core.pacing import PaceMonitor
from watcher.service.metrics import Metrics
from watcher.simulator.app import ManualClock, create_app
from watcher.simulator.scenario import generate_scenario
from watcher.state.store import Store
from watcher.watching.app import Watcher


def observe(pace: PaceMonitor, start: float, end: float, gap: float) -> list[bool]:
    """A poll of an active run (interval 0.5 s) every 0.1 s, each after `gap` seconds."""
    return [
        pace.observe(start + i / 10, intended=0.5, actual=gap)
        for i in range(int((end - start) * 10))
    ]


def test_one_warning_per_stretch():
    pace = PaceMonitor(window=60.0)
    said = observe(pace, 0, 200, 3.0)
    assert said.count(True) == 1
    assert said.index(True) / 10 >= 60  # only after a minute of long gaps
    assert not any(observe(pace, 200, 300, 0.5))  # recovered: quiet, and armed again
    assert observe(pace, 300, 400, 3.0).count(True) == 1


def test_short_stretches_say_nothing():
    pace = PaceMonitor(window=60.0)
    for start in range(0, 300, 60):  # 40 s of long gaps, then 20 s of good ones
        assert not any(observe(pace, start, start + 40, 3.0))
        assert not any(observe(pace, start + 40, start + 60, 0.5))


@pytest.mark.anyio
async def test_a_budget_too_small_for_the_interval_is_said_once(tmp_path):
    scenario = generate_scenario(runs=10, seed=5, duration=10_000.0)
    app = create_app(scenario, clock=ManualClock())
    watches = [{"thread_id": t.id, "run_id": r.id} for t in scenario.threads for r in t.runs]
    settings = Settings.model_validate(
        {
            "api": {"base_url": "http://127.0.0.1:9/v1"},
            "poll": {"interval": 0.1, "max_requests_per_second": 20, "idle_after": 1000},
            "state": {"path": str(tmp_path / "s.db")},
            "watch": watches,
        }
    )
    clock = AnyioClock()
    metrics = Metrics()
    client = ApiClient(
        settings.api,
        settings.retry,
        clock=clock,
        gate=RateGate(clock, rate=20.0),
        transport=httpx.ASGITransport(app),
    )
    store = Store(settings.state.path)
    watcher = Watcher(
        settings,
        client=client,
        store=store,
        clock=clock,
        metrics=metrics,
        pace=PaceMonitor(window=1.0),  # a minute in production
    )
    warnings: list[dict[str, object]] = []

    def after_poll(_objects: object) -> None:
        warnings[:] = [e for e in logs if "active runs are polled every" in str(e["event"])]
        if warnings:
            watcher.stop()

    watcher.observers.append(after_poll)
    with capture_logs() as logs, anyio.fail_after(30):
        await watcher.run()
    store.close()
    await client.aclose()
    [warning] = warnings
    # 10 runs x 1-2 requests per poll at 20 requests/s: each run every ~0.5-1 s, not 0.1 s
    assert "max_requests_per_second = 20" in str(warning["event"])
    effective = warning["effective_interval"]
    assert isinstance(effective, float) and effective > 0.2
    text = generate_latest(metrics.registry).decode()
    assert "runstep_watcher_effective_poll_interval_seconds" in text
