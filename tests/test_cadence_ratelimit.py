"""Pure policies: the next poll delay, and request pacing."""

from __future__ import annotations

import pytest

from tests.fakes import FakeClock
from watcher.api.ratelimit import RateGate
from watcher.config.settings import PollSettings
from watcher.core.cadence import next_delay

POLL = PollSettings(interval=1.0, max_interval=8.0, idle_after=5.0)


@pytest.mark.parametrize(
    ("previous", "kwargs", "expected"),
    [
        (4.0, {"changed": True, "slow": False, "idle_for": 0.0}, 1.0),  # snaps back
        (1.0, {"changed": False, "slow": False, "idle_for": 2.0}, 1.0),  # active, not idle yet
        (1.0, {"changed": False, "slow": False, "idle_for": 6.0}, 1.5),  # idle: backs off
        (6.0, {"changed": False, "slow": False, "idle_for": 60.0}, 8.0),  # capped
        (1.0, {"changed": False, "slow": True, "idle_for": 0.0}, 1.5),  # requires_action
        (2.0, {"changed": False, "slow": True, "idle_for": 3.0}, 2.0),  # ... at most 2x first
        (2.0, {"changed": False, "slow": True, "idle_for": 6.0}, 3.0),  # ... then backs off
        (1.0, {"changed": True, "slow": False, "idle_for": 0.0, "poll_after": 3.0}, 3.0),
        (1.0, {"changed": False, "slow": False, "idle_for": 0.0, "poll_after": 99.0}, 8.0),
    ],
)
def test_next_delay(previous, kwargs, expected):
    assert next_delay(previous, poll=POLL, **kwargs) == pytest.approx(expected)


def test_gate_spaces_requests_after_the_burst():
    clock = FakeClock(start=0.0)
    gate = RateGate(clock, rate=10.0, burst=2.0)
    waits = [gate.reserve() for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.0, 0.1, 0.2, 0.3])


def test_gate_refills_with_time():
    clock = FakeClock(start=0.0)
    gate = RateGate(clock, rate=10.0, burst=1.0)
    assert gate.reserve() == 0.0
    clock.t = 5.0
    assert gate.reserve() == 0.0


def test_pause_holds_every_request():
    clock = FakeClock(start=0.0)
    gate = RateGate(clock, rate=100.0, burst=100.0)
    gate.pause(2.0)
    assert gate.reserve() == pytest.approx(2.0)
    assert gate.reserve() == pytest.approx(2.0)
    clock.t = 3.0
    assert gate.reserve() == pytest.approx(0.0)
