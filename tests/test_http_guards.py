"""The HTTP endpoint refuses what a hostile web page or client sends: foreign Host (DNS
rebinding), foreign Origin (CSRF), non-JSON writes, big or deeply nested bodies, watches past
the cap. The daemon as a process, HTTP over loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.proc import Daemon
from tests.test_production import free_port

BASE = "http://127.0.0.1:9/v1"  # loopback: no key needed
TOKEN = "guard-token-0123456789"


def start(path: Path, extra: str = "") -> tuple[Daemon, str]:
    port = free_port()
    cfg = path / "c.toml"
    cfg.write_text(
        f'[state]\npath = "{path / "s.db"}"\n[retry]\nattempts = 1\n'
        f'[http]\nlisten = "127.0.0.1:{port}"\n{extra}'
    )
    d = Daemon("run", "--config", str(cfg), OPENAI_BASE_URL=BASE)
    d.wait_log("http endpoint listening")
    return d, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory) -> Iterator[tuple[Daemon, str]]:
    d, url = start(
        tmp_path_factory.mktemp("guards"),
        'allowed_hosts = ["watcher.internal"]\nmax_watches = 3\nheader_timeout = 0.5\n',
    )
    try:
        yield d, url
    finally:
        d.kill()


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("rebound.evil.example:{port}", 403),
        ("127.0.0.1.evil.example", 403),
        ("localhost:{port}", 200),
        ("127.0.0.1:{port}", 200),
        ("[::1]:{port}", 200),
        ("watcher.internal", 200),
    ],
)
def test_host_must_name_this_endpoint(endpoint, host, status):
    _, url = endpoint
    port = url.rsplit(":", 1)[1]
    for path in ("/status", "/v1/watches", "/livez"):
        r = httpx.get(url + path, headers={"Host": host.format(port=port)})
        assert r.status_code == status, path


def test_foreign_origin_and_non_json_writes_are_refused(endpoint):
    _, url = endpoint
    body = {"thread_id": "thread_csrf"}
    evil = httpx.post(f"{url}/v1/watches", json=body, headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403
    null = httpx.post(f"{url}/v1/watches", json=body, headers={"Origin": "null"})
    assert null.status_code == 403
    plain = httpx.post(
        f"{url}/v1/watches",
        content=b'{"thread_id": "thread_csrf"}',
        headers={"content-type": "text/plain"},
    )
    assert plain.status_code == 415
    form = httpx.post(f"{url}/v1/watches", data={"thread_id": "thread_csrf"})
    assert form.status_code == 415
    listed = httpx.get(f"{url}/v1/watches").json()["watches"]
    assert "thread_csrf" not in {w["thread_id"] for w in listed}
    same = httpx.post(f"{url}/v1/watches", json=body, headers={"Origin": url})
    assert same.status_code == 201
    assert httpx.delete(f"{url}/v1/watches/thread_csrf").status_code == 204


def test_bodies_are_capped_before_parsing_with_or_without_length(endpoint):
    d, url = endpoint
    big = b'{"thread_id": "' + b"x" * 100_000 + b'"}'
    json_type = {"content-type": "application/json"}
    assert httpx.post(f"{url}/v1/watches", content=big, headers=json_type).status_code == 413

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]

    chunked = httpx.post(f"{url}/v1/watches", content=chunks(), headers=json_type)
    assert chunked.status_code == 413
    fits = httpx.post(f"{url}/v1/watches", json={"thread_id": "t", "pad": "x" * 60_000})
    assert fits.status_code == 422 and fits.json()["error"]["field"] == "pad"
    deep = httpx.post(f"{url}/v1/watches", content=b"[" * 60_000, headers=json_type)
    assert deep.status_code == 422
    assert httpx.get(f"{url}/livez").status_code == 200
    assert not [line for line in d.stderr if "Traceback" in line or "Exception" in line]


def test_watches_are_capped(endpoint):
    _, url = endpoint
    for i in range(3):
        r = httpx.post(f"{url}/v1/watches", json={"thread_id": "thread_c", "run_id": f"run_{i}"})
        assert r.status_code == 201
    over = httpx.post(f"{url}/v1/watches", json={"thread_id": "thread_c", "run_id": "run_9"})
    assert over.status_code == 507 and "max_watches" in over.json()["error"]["message"]
    again = httpx.post(f"{url}/v1/watches", json={"thread_id": "thread_c", "run_id": "run_0"})
    assert again.status_code == 200  # already watched: not a new one
    assert httpx.delete(f"{url}/v1/watches/thread_c/run_0").status_code == 204
    r = httpx.post(f"{url}/v1/watches", json={"thread_id": "thread_c", "run_id": "run_9"})
    assert r.status_code == 201
    for i in (1, 2, 9):
        assert httpx.delete(f"{url}/v1/watches/thread_c/run_{i}").status_code == 204


def test_bearer_scheme_in_any_case(tmp_path):
    d, url = start(tmp_path, f'token = "{TOKEN}"\n')
    try:
        for scheme in ("Bearer", "bearer", "BEARER"):
            r = httpx.get(f"{url}/status", headers={"authorization": f"{scheme} {TOKEN}"})
            assert r.status_code == 200, scheme
        for wrong in (f"Basic {TOKEN}", f"Bearer {TOKEN}x", TOKEN, "Bearer"):
            r = httpx.get(f"{url}/status", headers={"authorization": wrong})
            assert r.status_code == 401, wrong
    finally:
        d.kill()


def test_a_request_head_that_never_ends_is_cut_off(endpoint):
    _, url = endpoint
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
        slow.sendall(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and no more
        assert slow.recv(1024) == b""  # closed by the daemon, not by our timeout
    with socket.create_connection(("127.0.0.1", port), timeout=10) as silent:
        assert silent.recv(1024) == b""
