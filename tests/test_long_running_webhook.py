"""A real daemon follows background responses and batches from an Azure-style server (key
in `api-key`, `api-version` query) and POSTs `[webhook] format = "openai"` events that the
official `openai` package's `client.webhooks.unwrap` accepts; an object gone after being seen
ends its watch with one warning and a metric."""

from __future__ import annotations

import base64

import httpx

from tests.openai_receiver import OpenAIReceiver
from tests.proc import Daemon
from tests.test_production import free_port

SECRET = "whsec_" + base64.b64encode(b"long-running-webhook-test-key-32").decode()
KEY = "azure-key-0123456789abcdef"
RAW = {
    "responses": [
        {"id": "resp_ok", "timeline": [["queued", 0], ["in_progress", 1], ["completed", 3]]},
        {"id": "resp_gone", "timeline": [["queued", 0], ["in_progress", 1]], "gone_at": 3},
    ],
    "batches": [
        {"id": "batch_busy", "timeline": [["validating", 0], ["in_progress", 1], ["failed", 3]]}
    ],
}


def test_openai_format_webhook_from_a_real_daemon_against_an_azure_style_server(sim, tmp_path):
    s = sim(
        RAW,
        api_key=KEY,
        api_key_header="api-key",
        required_query={"api-version": "2025-04-01-preview"},
    )
    receiver = OpenAIReceiver(SECRET)
    port = free_port()
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[api]\nbase_url = "{s.base_url}"\napi_key_header = "api-key"\n'
        '[api.query]\napi-version = "2025-04-01-preview"\n'
        "[poll]\ninterval = 0.05\nmax_interval = 0.2\nidle_after = 100\n"
        f'[state]\npath = "{tmp_path / "s.db"}"\n'
        f'[http]\nlisten = "127.0.0.1:{port}"\n'
        f'[webhook]\nurl = "{receiver.url}"\nsecret = "{SECRET}"\nformat = "openai"\n'
        '[[watch]]\nresponse_id = "resp_ok"\n[[watch]]\nresponse_id = "resp_gone"\n'
        '[[watch]]\nbatch_id = "batch_busy"\n'
    )
    d = Daemon("run", "--config", str(cfg), OPENAI_API_KEY=KEY)
    try:
        d.wait_for(lambda: {e["data"]["id"] for e in d.events} >= {"resp_ok", "resp_gone"})
        s.advance(1.5)
        d.wait_for(lambda: any(e["type"] == "response.in_progress" for e in d.events))
        d.wait_for(lambda: sum(e["type"] == "response.in_progress" for e in d.events) == 2)
        s.advance(2)
        receiver.wait_for(lambda: len(receiver.events) == 2)
        got = sorted((e.type, e.data.id) for e in receiver.events)
        assert got == [("batch.failed", "batch_busy"), ("response.completed", "resp_ok")]
        d.wait_log("response resp_gone not found; watch dropped")
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert "runstep_watcher_watches_gone_total 1.0" in metrics
        assert d.stop() == 0
    finally:
        d.kill()
        receiver.close()
    assert receiver.rejected == []
    assert "".join(d.stderr).count("resp_gone not found") == 1
    assert KEY not in d.output()


def test_default_format_webhook_carries_every_status_of_the_new_kinds(sim, tmp_path):
    """Our own format: every status of a background response and a batch, whole objects,
    signed (checked with the Standard Webhooks reference library)."""
    from tests.receiver import Receiver

    s = sim({"responses": [RAW["responses"][0]], "batches": RAW["batches"]})
    receiver = Receiver([SECRET])  # started
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[api]\nbase_url = "{s.base_url}"\n'
        "[poll]\ninterval = 0.05\nmax_interval = 0.2\nidle_after = 100\n"
        f'[state]\npath = "{tmp_path / "s.db"}"\n'
        f'[webhook]\nurl = "{receiver.url}"\nsecret = "{SECRET}"\n'
        '[[watch]]\nresponse_id = "resp_ok"\n[[watch]]\nbatch_id = "batch_busy"\n'
    )
    d = Daemon("run", "--config", str(cfg), OPENAI_API_KEY="sk-test-000000000000")
    try:
        receiver.wait_for(lambda: len(receiver.received) >= 2, what="queued, validating")
        s.advance(1.5)
        receiver.wait_for(lambda: len(receiver.received) >= 4, what="both in_progress")
        s.advance(2)
        receiver.wait_for(lambda: len(receiver.received) >= 6, what="6 events")
        assert d.stop() == 0
    finally:
        d.kill()
        receiver.down()
    got = [(e["type"], e["data"]["id"]) for e in receiver.events()]
    assert got.count(("response.completed", "resp_ok")) == 1
    assert sorted(set(got)) == [
        ("batch.failed", "batch_busy"),
        ("batch.in_progress", "batch_busy"),
        ("batch.validating", "batch_busy"),
        ("response.completed", "resp_ok"),
        ("response.in_progress", "resp_ok"),
        ("response.queued", "resp_ok"),
    ]
    assert all(e["data"]["object"] in ("response", "batch") for e in receiver.events())
    assert receiver.rejected == []
