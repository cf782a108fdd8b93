"""Hostile API servers and webhook receivers on 127.0.0.1 (raw sockets): bodies too large or
never ending, answers trickled a byte at a time, JSON that is not JSON."""

from __future__ import annotations

import base64
import threading
import time

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes import FakeClock
from tests.hostile import HostileServer, head, json_answer
from tests.proc import Daemon
from tests.test_production import free_port
from watcher.api.client import ApiClient
from watcher.api.ratelimit import RateGate
from watcher.config.settings import ApiSettings, RetrySettings, WebhookSettings
from watcher.core.errors import BadResponseError, TransientError
from watcher.core.transitions import Observed, detect
from watcher.delivery.webhook import SINK, WebhookSink
from watcher.state.store import Store

RUN = {"id": "run_a", "object": "thread.run", "status": "in_progress", "thread_id": "thread_a"}


def client(url: str, **api) -> ApiClient:
    clock = FakeClock()
    settings = ApiSettings(base_url=url + "/v1", **api)
    retry = RetrySettings(attempts=2, initial_delay=0.01, max_delay=0.01)
    return ApiClient(settings, retry, clock=clock, gate=RateGate(clock, rate=1000.0))


def endless(request: bytes, sock, stop: threading.Event) -> None:
    """A chunked answer that never ends (until the server closes)."""
    sock.sendall(head(200, content_type="application/json", transfer_encoding="chunked"))
    chunk = b"[" * 16384
    while not stop.is_set():
        sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))


def trickle(request: bytes, sock, stop: threading.Event) -> None:
    """A valid answer, one byte every 0.2 s: each read is quick, the whole never ends."""
    answer = json_answer(200, RUN)
    for byte in answer:
        if stop.wait(0.2):
            return
        sock.sendall(bytes([byte]))


@pytest.mark.anyio
async def test_a_chunked_answer_that_never_ends_is_abandoned_at_the_cap():
    with HostileServer(endless) as api:
        c = client(api.url, max_response_bytes=65536)
        with anyio.fail_after(20), pytest.raises(BadResponseError, match="max_response_bytes"):
            await c.get(("threads", "thread_a", "runs", "run_a"))
        await c.aclose()
        assert len(api.requests) == 2  # transient: retried


@pytest.mark.anyio
async def test_an_announced_length_over_the_cap_is_not_read():
    def huge(request: bytes, sock, stop) -> None:
        sock.sendall(head(200, content_type="application/json", content_length=str(10**9)))

    with HostileServer(huge) as api:
        c = client(api.url, max_response_bytes=65536)
        with anyio.fail_after(20), pytest.raises(BadResponseError, match="1000000000 bytes"):
            await c.get(("threads", "thread_a", "runs", "run_a"))
        await c.aclose()


@pytest.mark.anyio
async def test_a_page_under_the_default_cap_is_read_whole():
    page = {"object": "list", "data": [{"x": "y" * 50_000}] * 100, "has_more": False}

    def big(request: bytes, sock, stop) -> None:
        sock.sendall(json_answer(200, page))

    with HostileServer(big) as api:
        c = client(api.url)
        with anyio.fail_after(20):
            response = await c.get(("threads", "thread_a", "runs", "run_a", "steps"))
        await c.aclose()
        assert len(response.body["data"]) == 100


@pytest.mark.anyio
async def test_timeout_bounds_the_whole_exchange_not_each_read():
    with HostileServer(trickle) as api:
        c = client(api.url, timeout=1.0)
        started = time.monotonic()
        with anyio.fail_after(15), pytest.raises(TransientError, match=r"timed out after 1\.0s"):
            await c.get(("threads", "thread_a", "runs", "run_a"))
        await c.aclose()
        assert len(api.requests) == 2
        assert time.monotonic() - started < 10  # two exchanges of 1 s, not a trickle's 20 s


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b'{"id": "run_a", "usage": {"total_tokens": NaN}}', "NaN"),
        (b'{"id": "run_a", "usage": {"total_tokens": 1e999}}', "overflows"),
        (b'{"id": "run_a", "x": -Infinity}', "Infinity"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deep"),
    ],
)
async def test_json_that_cannot_be_emitted_as_json_is_a_malformed_answer(body, why):
    """Re-emitted as `NaN`/`Infinity` (not JSON) before; too deep: "bug: a poll crashed"."""
    with HostileServer(lambda r, sock, s: sock.sendall(json_answer(200, body))) as api:
        c = client(api.url)
        with anyio.fail_after(20), pytest.raises(BadResponseError, match=why):
            await c.get(("threads", "thread_a", "runs", "run_a"))
        await c.aclose()


def test_daemon_abandons_an_endless_answer_counts_it_and_stays_live(tmp_path):
    port = free_port()
    with HostileServer(endless) as api:
        cfg = tmp_path / "c.toml"
        cfg.write_text(
            f'[api]\nbase_url = "{api.url}/v1"\nmax_response_bytes = 100000\n'
            "[poll]\ninterval = 0.05\n[retry]\nattempts = 1\n"
            f'[state]\npath = "{tmp_path / "s.db"}"\n'
            f'[http]\nlisten = "127.0.0.1:{port}"\n'
            '[[watch]]\nthread_id = "thread_a"\nrun_id = "run_a"\n'
        )
        d = Daemon("run", "--config", str(cfg))
        try:
            d.wait_log("max_response_bytes", timeout=20)
            assert httpx.get(f"http://127.0.0.1:{port}/livez").status_code == 200
            text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            families = {f.name: f for f in text_string_to_metric_families(text)}
            abandoned = {
                s.labels["reason"]: s.value
                for s in families["runstep_watcher_api_responses_abandoned"].samples
                if s.name.endswith("_total")
            }
            assert abandoned["too_large"] >= 1
            assert "bug" not in "".join(d.stderr)
        finally:
            d.kill()


# -- webhook receivers ----------------------------------------------------------------------

SECRET = "whsec_" + base64.b64encode(b"a" * 32).decode()


def outbox(tmp_path, clock: FakeClock) -> Store:
    store = Store(tmp_path / "s.db")
    store.add_run_watch("thread_1", "run_1", "config")
    obj = {"id": "step_1", "object": "thread.run.step", "status": "completed"}
    observed = [Observed("step_1", "thread.run.step", "completed", "thread_1", "run_1", obj)]
    found = detect({}, observed, now=int(clock.wall()))
    store.record(
        "thread_1", "run_1", found.events, found.updates, cursor=None, done=False,
        sinks=[SINK], deadlines={SINK: clock.wall() + 300},
    )  # fmt: skip
    return store


@pytest.mark.anyio
@pytest.mark.parametrize("answer", [endless, trickle], ids=["endless", "trickle"])
async def test_a_hostile_receiver_holds_a_delivery_no_longer_than_timeout(tmp_path, answer):
    """A 300 MB reply was read whole (x 8 slots); a trickled one held the slot for ever."""
    with HostileServer(answer) as hook:
        clock = FakeClock(wall=time.time())
        store = outbox(tmp_path, clock)
        settings = WebhookSettings.model_validate(
            {"url": hook.url + "/hook", "secret": [SECRET], "timeout": 1.0, "schedule": [0, 60]}
        )
        sink = WebhookSink(settings, store, clock)
        started = time.monotonic()
        with anyio.fail_after(15):
            await sink.deliver_once()
        await sink.aclose()
        elapsed = time.monotonic() - started
        items = store.outbox(SINK)
        store.close()
    if answer is endless:  # a 200 whose endless reply is not read: delivered
        assert sink.delivered == 1 and items == []
    else:
        assert sink.failed == 1 and "timed out after 1.0s" in (items[0].last_error or "")
    assert elapsed < 10


@pytest.mark.anyio
async def test_an_error_body_nested_too_deep_is_summarised_not_a_crash():
    body = b'{"error": ' * 100_000 + b"1" + b"}" * 100_000
    with HostileServer(lambda r, sock, s: sock.sendall(json_answer(500, body))) as api:
        c = client(api.url)
        with anyio.fail_after(20), pytest.raises(TransientError, match="HTTP 500: non-JSON"):
            await c.get(("threads", "thread_a", "runs", "run_a"))
        await c.aclose()
