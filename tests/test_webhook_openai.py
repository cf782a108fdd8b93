"""`[webhook] format = "openai"`: a handler written for OpenAI's webhooks accepts our deliveries.

In-process sink, real store on disk, real HTTP on loopback; the receiver is the official
`openai` package's `client.webhooks.unwrap(body, headers)` (it verifies the Standard
Webhooks signature against the real time and parses the event into its typed models).
Objects are the simulator's, shaped per OpenAI's spec; events come from `detect`.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import anyio
import pytest
from prometheus_client import generate_latest

from tests.cli import run_cli
from tests.fakes import FakeClock
from tests.openai_receiver import OpenAIReceiver
from tests.openapi_schema import long_running_errors
from tests.proc import Daemon, event_pairs
from watcher.config.settings import WebhookSettings
from watcher.core.events import event_id
from watcher.core.transitions import Observed, detect
from watcher.core.webhook_openai import OPENAI_EVENT_TYPES, openai_body
from watcher.delivery.webhook import SINK, WebhookSink
from watcher.service.metrics import Metrics
from watcher.simulator.kinds import BATCH, FILE_BATCH, FINE_TUNING_JOB, RESPONSE, Kind
from watcher.simulator.longrunning import (
    BatchSpec,
    FileBatchSpec,
    FineTuningJobSpec,
    ResponseSpec,
)
from watcher.simulator.longrunning_objects import Shaper
from watcher.state.store import Store

pytestmark = pytest.mark.anyio

SECRET = "whsec_" + base64.b64encode(b"openai-format-test-key-32-bytes!").decode()
OTHER = "whsec_" + base64.b64encode(b"another-key-that-is-not-ours-32b").decode()

# each object's statuses, one per poll: every terminal status OpenAI sends a webhook for,
# after the non-terminal ones it does not
WALKS: list[tuple[Kind, str, tuple[str, ...]]] = [
    (RESPONSE, "resp_a", ("queued", "in_progress", "completed")),
    (RESPONSE, "resp_b", ("queued", "failed")),
    (RESPONSE, "resp_c", ("in_progress", "cancelled")),
    (RESPONSE, "resp_d", ("in_progress", "incomplete")),
    (BATCH, "batch_a", ("validating", "in_progress", "finalizing", "completed")),
    (BATCH, "batch_b", ("validating", "failed")),
    (BATCH, "batch_c", ("in_progress", "expired")),
    (BATCH, "batch_d", ("in_progress", "cancelling", "cancelled")),
    (FINE_TUNING_JOB, "ftjob-a", ("validating_files", "queued", "running", "succeeded")),
    (FINE_TUNING_JOB, "ftjob-b", ("running", "failed")),
    (FINE_TUNING_JOB, "ftjob-c", ("queued", "cancelled")),
    (FILE_BATCH, "vsfb_a", ("in_progress", "completed")),  # OpenAI sends none for these
]


def settings(url: str, secret: str = SECRET, **extra: Any) -> WebhookSettings:
    return WebhookSettings.model_validate(
        {"url": url, "secret": [secret], "schedule": [0, 5, 60], "max_age": 300, **extra}
    )


def shaped(kind: Kind, oid: str, statuses: tuple[str, ...], at: int) -> dict[str, Any]:
    """The object as the API would return it `at` polls into its walk."""
    timeline = tuple((s, float(i)) for i, s in enumerate(statuses))
    shaper = Shaper(epoch=time.time() - 60)
    if kind is RESPONSE:
        return shaper.response(ResponseSpec(oid, timeline), at)
    if kind is BATCH:
        return shaper.batch(BatchSpec(oid, timeline), at)
    if kind is FINE_TUNING_JOB:
        return shaper.job(FineTuningJobSpec(oid, timeline), at)
    return shaper.file_batch(FileBatchSpec(oid, timeline, vector_store_id="vs_1"), at)


def poll(store: Store, clock: FakeClock, observed: list[Observed]) -> list[str]:
    """Record what one poll saw, as the watcher does: one transaction per watched object."""
    ids = []
    for obs in observed:
        known = store.known_states(obs.thread_id, obs.run_id)
        found = detect(known, [obs], now=int(clock.wall()))
        store.record(
            obs.thread_id,
            obs.run_id,
            found.events,
            found.updates,
            cursor=None,
            done=False,
            sinks=[SINK],
            deadlines={SINK: clock.wall() + 300},
        )
        ids += [e.id for e in found.events]
    return ids


def long_running(kind: Kind, oid: str, statuses: tuple[str, ...], at: int) -> Observed:
    data = shaped(kind, oid, statuses, at)
    return Observed(oid, kind.object, data["status"], "", oid, data)


def run_step(step_id: str, status: str) -> Observed:
    data = {"id": step_id, "object": "thread.run.step", "status": status, "run_id": "run_1"}
    return Observed(step_id, "thread.run.step", status, "thread_1", "run_1", data)


async def drain(sink: WebhookSink, rounds: int = 50) -> None:
    for _ in range(rounds):
        if not await sink.deliver_once():
            return
    raise AssertionError("the outbox did not drain")


def model_name(event_type: str) -> str:
    """`fine_tuning.job.succeeded` → `FineTuningJobSucceeded` (the spec's and the SDK's)."""
    return "".join(w.capitalize() for w in event_type.replace("_", ".").split("."))


async def test_openai_package_unwraps_every_type_and_nothing_else_is_sent(tmp_path):
    receiver = OpenAIReceiver(SECRET)
    try:
        clock = FakeClock(wall=time.time())
        store = Store(tmp_path / "s.db")
        metrics = Metrics()
        sink = WebhookSink(settings(receiver.url, format="openai"), store, clock, metrics=metrics)
        recorded = 0
        for at in range(4):  # four polls; each delivery round in between
            seen = [long_running(k, o, w, at) for k, o, w in WALKS if at < len(w)]
            seen += [run_step("step_1", ("in_progress", "completed")[min(at, 1)])]
            recorded += len(poll(store, clock, seen))
            await drain(sink)
        await sink.aclose()

        assert receiver.rejected == []
        sent = {(e.type, e.data.id) for e in receiver.events}
        assert sent == {(f"{k.object}.{w[-1]}", o) for k, o, w in WALKS if k is not FILE_BATCH}
        assert {e.type for e in receiver.events} == OPENAI_EVENT_TYPES
        for event, body, headers in zip(
            receiver.events, receiver.bodies, receiver.headers, strict=True
        ):
            # the SDK's own typed model for that type, and our deterministic event id
            assert type(event).__name__ == model_name(event.type) + "WebhookEvent"
            assert event.id == event_id(event.data.id, event.type.rsplit(".", 1)[1])
            assert event.object == "event" and headers["webhook-id"] == event.id
            raw = json.loads(body)
            assert list(raw) == ["id", "object", "type", "created_at", "data"]
            assert raw["data"] == {"id": event.data.id}
            assert raw["created_at"] == int(clock.wall())
            assert long_running_errors(raw, "Webhook" + model_name(event.type)) == []
        # every other event was marked done without a POST: nothing waits in the outbox
        assert store.outbox(SINK) == []
        assert sink.skipped == recorded - len(receiver.events) and sink.skipped > 0
        assert sink.delivered == len(receiver.events)
        text = generate_latest(metrics.registry).decode()
        assert f'webhook_deliveries_total{{result="skipped"}} {float(sink.skipped)}' in text
    finally:
        receiver.close()


async def test_skipped_events_do_not_wait_behind_a_failing_endpoint(tmp_path):
    receiver = OpenAIReceiver(SECRET)
    receiver.script = [503] * 3
    try:
        clock = FakeClock(wall=time.time())
        store = Store(tmp_path / "s.db")
        hook = settings(receiver.url, format="openai", schedule=[0, 2, 2])
        sink = WebhookSink(hook, store, clock, jitter=lambda: 0.0)
        walk = ("queued", "in_progress", "completed")
        for at in range(3):
            seen = [long_running(RESPONSE, "resp_x", walk, at), run_step(f"step_{at}", "failed")]
            poll(store, clock, seen)
        await drain(sink)
        # the endpoint failed: only the one event OpenAI would send waits for it
        [waiting] = store.outbox(SINK)
        assert (waiting.type, waiting.attempts) == ("response.completed", 1)
        assert sink.skipped == 5
        for _ in range(3):  # its retries come due; the endpoint answers at the third
            clock.t += 3
            await drain(sink)
        await sink.aclose()
        [event] = receiver.events
        assert (event.type, event.data.id) == ("response.completed", "resp_x")
        assert store.outbox(SINK) == []
    finally:
        receiver.close()


async def test_a_receiver_with_another_secret_refuses_the_delivery(tmp_path):
    receiver = OpenAIReceiver(OTHER)
    try:
        clock = FakeClock(wall=time.time())
        store = Store(tmp_path / "s.db")
        sink = WebhookSink(settings(receiver.url, format="openai"), store, clock)
        poll(store, clock, [long_running(BATCH, "batch_z", ("failed",), 0)])
        await drain(sink)
        await sink.aclose()
        assert receiver.events == []
        [refusal] = receiver.rejected
        assert refusal.startswith("InvalidWebhookSignatureError")
        [dead] = store.outbox(SINK)
        assert dead.state == "dead"  # a 4xx refusal, as for any endpoint
    finally:
        receiver.close()


async def test_default_format_is_ours_and_sends_every_event(tmp_path):
    receiver = OpenAIReceiver(SECRET)
    try:
        clock = FakeClock(wall=time.time())
        store = Store(tmp_path / "s.db")
        hook = settings(receiver.url)
        assert hook.format == "runstep-watcher"
        sink = WebhookSink(hook, store, clock)
        walk = ("in_progress", "completed")
        ids = []
        for at in range(2):
            ids += poll(store, clock, [long_running(RESPONSE, "resp_y", walk, at)])
            await drain(sink)
        await sink.aclose()
        # the signature verifies for OpenAI's package too; the body is our whole event line
        assert [json.loads(b)["id"] for b in receiver.bodies] == ids
        last = json.loads(receiver.bodies[-1])
        assert last["previous_status"] == "in_progress"
        assert last["data"]["id"] == "resp_y" and last["data"]["status"] == "completed"
        assert last["data"]["usage"]["total_tokens"] > 0  # the whole object, as polled
        assert sink.skipped == 0
    finally:
        receiver.close()


def test_openai_body_of_another_type_is_none():
    line = json.dumps({"id": "evt_1", "type": "x", "created_at": 1, "data": {"id": "resp_1"}})
    assert openai_body("response.in_progress", line) is None
    assert openai_body("thread.run.completed", line) is None
    assert openai_body("vector_store.files_batch.completed", line) is None
    assert json.loads(openai_body("response.completed", line) or "") == {
        "id": "evt_1",
        "object": "event",
        "type": "response.completed",
        "created_at": 1,
        "data": {"id": "resp_1"},
    }


HOOK = f'[webhook]\nurl = "https://h.example/x"\nsecret = "{SECRET}"\n'


@pytest.mark.parametrize(("value", "code"), [("openai", 0), ("runstep-watcher", 0), ("svix", 78)])
def test_check_config_format(tmp_path, value, code):
    cfg = tmp_path / "c.toml"
    cfg.write_text(HOOK + f'format = "{value}"\n')
    result = run_cli("check-config", "--config", str(cfg), OPENAI_API_KEY="sk-" + "k" * 20)
    assert result.returncode == code, result.stderr
    if code:
        [line] = result.stderr.strip().splitlines()
        assert "webhook.format" in line and "'openai'" in line and "svix" in line
    else:
        assert f'"format": "{value}"' in result.stdout


RUN_SCENARIO = {
    "threads": [
        {
            "id": "thread_o",
            "runs": [
                {
                    "id": "run_o1",
                    "timeline": [["queued", 0], ["in_progress", 1], ["completed", 2]],
                    "steps": [
                        {"id": "step_o1", "timeline": [["in_progress", 1], ["completed", 2]]}
                    ],
                }
            ],
        }
    ]
}


def test_daemon_in_openai_format_posts_no_run_events_and_keeps_no_backlog(sim, tmp_path):
    s = sim(RUN_SCENARIO)
    receiver = OpenAIReceiver(SECRET)
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[api]\nbase_url = "{s.base_url}"\n[poll]\ninterval = 0.05\nmax_interval = 0.2\n'
        f'[state]\npath = "{tmp_path / "s.db"}"\n'
        f'[webhook]\nurl = "{receiver.url}"\nsecret = "{SECRET}"\nformat = "openai"\n'
        '[[watch]]\nthread_id = "thread_o"\nrun_id = "run_o1"\n'
    )
    d = Daemon("run", "--config", str(cfg), RUNSTEP_WATCHER_LOG_LEVEL="debug")
    try:
        s.advance(3)
        d.wait_for(lambda: ("run_o1", "completed") in event_pairs(d.events))
        # OpenAI sends no webhook for Assistants runs: each event is skipped, none POSTed
        d.wait_for(lambda: all(e["id"] in "".join(d.stderr) for e in d.events))
        assert d.stop() == 0
        assert receiver.events == [] and receiver.rejected == []
        listed = run_cli("outbox", "list", "--config", str(cfg))
        assert listed.returncode == 0 and "0 pending, 0 dead" in listed.stderr
    finally:
        d.kill()
        receiver.close()


async def test_events_not_sent_are_skipped_while_every_slot_is_busy(tmp_path):
    receiver = OpenAIReceiver(SECRET)
    receiver.gate.clear()  # the endpoint holds each request until told
    try:
        clock = FakeClock(wall=time.time())
        store = Store(tmp_path / "s.db")
        hook = settings(receiver.url, format="openai", max_concurrency=1)
        sink = WebhookSink(hook, store, clock)
        poll(store, clock, [long_running(RESPONSE, "resp_s", ("completed",), 0)])
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                # one dispatch turn at a time: the response's delivery takes the only slot
                assert await sink._start_due(tg) == 1
                poll(store, clock, [run_step("step_s1", "completed")])
                poll(store, clock, [run_step("step_s2", "failed")])
                assert await sink._start_due(tg) == 1  # step_s1 skipped, no slot needed
                assert await sink._start_due(tg) == 1  # then step_s2
                assert [i.type for i in store.outbox(SINK)] == ["response.completed"]
                receiver.gate.set()
        await sink.aclose()
        assert [e.data.id for e in receiver.events] == ["resp_s"]
        assert store.outbox(SINK) == [] and sink.skipped == 2
    finally:
        receiver.gate.set()
        receiver.close()
