"""Property tests: the pure core's invariants, and response handling that never crashes."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakes import FakeClock
from watcher.api.client import ApiClient
from watcher.api.ratelimit import RateGate
from watcher.config.settings import ApiSettings, RetrySettings
from watcher.core.errors import ApiError
from watcher.core.events import event_id
from watcher.core.transitions import ObjectState, Observed, detect
from watcher.sources import assistants

STATUSES = [
    "queued",
    "in_progress",
    "requires_action",
    "cancelling",
    "cancelled",
    "failed",
    "completed",
    "incomplete",
    "expired",
    "paused",
]
IDS = ["step_a", "step_b", "step_c", "run_1"]

snapshot = st.lists(st.tuples(st.sampled_from(IDS), st.sampled_from(STATUSES)), max_size=6)


def as_observed(pairs):
    return [
        Observed(
            oid,
            "thread.run.step",
            status,
            "thread_1",
            "run_1",
            {"id": oid, "object": "thread.run.step", "status": status},
        )
        for oid, status in pairs
    ]


@given(st.lists(snapshot, max_size=12))
def test_any_sequence_of_snapshots_keeps_the_invariants(snapshots):
    known: dict[str, ObjectState] = {}
    emitted: list[tuple[str, str]] = []
    last: dict[str, str] = {}
    for i, snap in enumerate(snapshots):
        result = detect(known, as_observed(snap), now=i)
        # deterministic: the same input gives the same output
        assert detect(known, as_observed(snap), now=i) == result
        for ev in result.events:
            pair = (ev.data["id"], ev.data["status"])
            emitted.append(pair)
            assert ev.id == event_id(*pair)
            assert ev.previous_status == last.get(pair[0])
            last[pair[0]] = pair[1]
        known.update(result.updates)
        # nothing for an unchanged object: a second look at the same snapshot is silent
        assert detect(known, as_observed(snap), now=i).events == []
    # one event per (object, status), in the order first observed
    assert len(emitted) == len(set(emitted))
    first_seen = []
    for snap in snapshots:
        for pair in snap:
            if pair not in first_seen:
                first_seen.append(pair)
    assert emitted == first_seen


json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
maybe_step = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.sampled_from(["step_1", "step_2", "../x", "", "a b"]), json_value),
        "object": st.one_of(st.just("thread.run.step"), json_value),
        "status": st.one_of(st.sampled_from(STATUSES), json_value),
    },
)
maybe_list = st.one_of(
    json_value,
    st.fixed_dictionaries(
        {"data": st.one_of(st.lists(st.one_of(maybe_step, json_value), max_size=5), json_value)},
        optional={"has_more": st.one_of(st.booleans(), json_value), "object": st.just("list")},
    ),
)
maybe_run = st.one_of(
    json_value,
    st.fixed_dictionaries(
        {"id": st.sampled_from(["run_1", "run_2"]), "object": st.just("thread.run")},
        optional={"status": st.one_of(st.sampled_from(STATUSES), json_value)},
    ),
)


@pytest.mark.anyio
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(run=maybe_run, pages=st.lists(maybe_list, min_size=1, max_size=3), raw=st.booleans())
async def test_malformed_responses_never_crash(run: Any, pages: list[Any], raw: bool):
    bodies = iter([run, *pages, *pages, *pages])

    def handler(request: httpx.Request) -> httpx.Response:
        body = next(bodies, {"object": "list", "data": [], "has_more": False})
        text = json.dumps(body)
        if raw:
            text = text[: max(1, len(text) // 2)]
        return httpx.Response(200, text=text, headers={"content-type": "application/json"})

    clock = FakeClock()
    client = ApiClient(
        ApiSettings(base_url="https://api.example.test/v1", api_key="sk-fuzz-000000"),
        RetrySettings(attempts=1),
        clock=clock,
        gate=RateGate(clock, rate=1e6),
        transport=httpx.MockTransport(handler),
    )
    try:
        obs = await assistants.observe_run(client, "thread_1", "run_1", cursor=None)
    except ApiError:
        return  # logged and retried by the watcher at its next poll
    # whatever came back is well-formed
    for o in obs.objects:
        assert o.kind in (assistants.RUN, assistants.STEP)
        assert isinstance(o.status, str) and o.status
    assert obs.objects[0].object_id == "run_1" or obs.objects[-1].object_id == "run_1"
