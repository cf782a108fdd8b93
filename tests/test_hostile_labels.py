"""Metrics label values stay bounded whatever the API invents: the daemon in-process against
a hostile API (Starlette over `httpx.ASGITransport`), /metrics read over loopback."""

from __future__ import annotations

import io
import itertools

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.test_hostile_paging import Hostile, settings
from tests.test_production import free_port
from watcher.service.daemon import serve

pytestmark = pytest.mark.anyio


async def test_a_new_status_every_poll_adds_no_metrics_series(tmp_path):
    counter = itertools.count()
    api = Hostile(lambda after: ([], False), run_status=lambda: f"status_{next(counter)}")
    port = free_port()
    http = {"http": {"listen": f"127.0.0.1:{port}"}}
    cfg = settings(tmp_path, {"thread_id": "thread_a", "run_id": "run_a"}, extra=http)
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: serve(
                    cfg, transport=httpx.ASGITransport(app=api.app), handle_signals=False,
                    stdout=io.StringIO(),
                )
            )  # fmt: skip
            while api.count("/runs/run_a") < 20:
                await api.changed.wait()
            async with httpx.AsyncClient() as http:
                text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
            tg.cancel_scope.cancel()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    types = {
        s.labels["type"]: s.value
        for s in families["runstep_watcher_events"].samples
        if s.name.endswith("_total")
    }
    assert set(types) == {"other"}
    assert types["other"] >= 19
