"""Errors sorted at the boundary, headers, Retry-After and the retry policy, on MockTransport."""

from __future__ import annotations

import httpx
import pytest
from structlog.testing import capture_logs

from tests.fakes import FakeClock
from watcher.api.client import ApiClient, classify, parse_retry_after
from watcher.api.ratelimit import RateGate
from watcher.config.settings import ApiSettings, RetrySettings
from watcher.core.errors import (
    AuthError,
    BadResponseError,
    NotFoundError,
    PermanentError,
    RateLimitedError,
    TransientError,
)
from watcher.sources.assistants import ASSISTANTS

KEY = "sk-test-SECRET-0123456789"
pytestmark = pytest.mark.anyio


def make_client(handler, *, clock=None, attempts=4, **api):
    clock = clock or FakeClock()
    settings = ApiSettings(base_url="https://api.example.test/v1", api_key=KEY, **api)
    retry = RetrySettings(attempts=attempts, initial_delay=0.5, max_delay=8.0)
    gate = RateGate(clock, rate=1000.0)
    return ApiClient(
        settings, retry, clock=clock, gate=gate, transport=httpx.MockTransport(handler)
    )


def resp(status, body=None, headers=None, text=None):
    req = httpx.Request("GET", "https://api.example.test/v1/threads/t/runs/r")
    if text is not None:
        return httpx.Response(status, text=text, headers=headers, request=req)
    return httpx.Response(status, json=body, headers=headers, request=req)


def err(message="x"):
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    }


@pytest.mark.parametrize(
    ("status", "exc"),
    [
        (408, TransientError),
        (409, TransientError),
        (429, RateLimitedError),
        (500, TransientError),
        (502, TransientError),
        (503, TransientError),
        (400, PermanentError),
        (401, AuthError),
        (403, AuthError),
        (404, NotFoundError),
        (422, PermanentError),
    ],
)
def test_classify_statuses(status, exc):
    with pytest.raises(exc) as info:
        classify(resp(status, err("boom")))
    assert type(info.value) is exc
    assert info.value.status == status


def test_classify_2xx_not_json_is_transient():
    with pytest.raises(BadResponseError):
        classify(resp(200, text="<html>bad gateway</html>", headers={"content-type": "text/html"}))


def test_classify_truncated_json_is_transient():
    with pytest.raises(BadResponseError):
        classify(
            resp(200, text='{"object": "list", "da', headers={"content-type": "application/json"})
        )


def test_503_html_body_is_transient_and_summarised():
    with pytest.raises(TransientError) as info:
        classify(resp(503, text="<html>" + "x" * 5000, headers={"content-type": "text/html"}))
    assert "text/html" in str(info.value)
    assert len(str(info.value)) < 200


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "3"}, 0.25),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers, expected):
    assert parse_retry_after(httpx.Headers(headers)) == expected


async def test_headers_auth_beta_agent_and_query():
    seen = []

    def handler(request: httpx.Request):
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    client = make_client(
        handler,
        organization="org_1",
        project="proj_1",
        headers={"X-Tenant": "a"},
        query={"api-version": "2024-05-01-preview"},
    )
    await client.get(
        ("threads", "thread_1", "runs", "run_1"), [("limit", "100")], headers=ASSISTANTS.headers
    )
    req = seen[0]
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert req.headers["openai-beta"] == "assistants=v2"
    assert req.headers["user-agent"].startswith("runstep-watcher/")
    assert req.headers["openai-organization"] == "org_1"
    assert req.headers["openai-project"] == "proj_1"
    assert req.headers["x-tenant"] == "a"
    assert req.url.path == "/v1/threads/thread_1/runs/run_1"
    assert req.url.params["api-version"] == "2024-05-01-preview"
    assert req.url.params["limit"] == "100"


async def test_the_beta_header_goes_only_with_the_source_that_needs_it():
    seen = []

    def handler(request: httpx.Request):
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    client = make_client(handler)
    await client.get(("responses", "resp_1"))
    await client.get(("threads", "thread_1", "runs", "run_1"), headers=ASSISTANTS.headers)
    assert "openai-beta" not in seen[0].headers
    assert seen[1].headers["openai-beta"] == "assistants=v2"
    assert seen[1].headers["authorization"] == f"Bearer {KEY}"


async def test_the_users_headers_override_a_sources():
    seen = []

    def handler(request: httpx.Request):
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    client = make_client(handler, headers={"OpenAI-Beta": "assistants=v3"})
    await client.get(("threads", "thread_1", "runs", "run_1"), headers=ASSISTANTS.headers)
    assert seen[0].headers.get_list("openai-beta") == ["assistants=v3"]


async def test_azure_style_key_header():
    seen = []
    client = make_client(
        lambda r: seen.append(r) or httpx.Response(200, json={}), api_key_header="api-key"
    )
    await client.get(("threads", "t"))
    assert seen[0].headers["api-key"] == KEY
    assert "authorization" not in seen[0].headers


async def test_path_segments_are_escaped():
    seen = []
    client = make_client(lambda r: seen.append(r) or httpx.Response(200, json={}))
    await client.get(("threads", "../../admin?x=1", "runs"))
    assert seen[0].url.raw_path == b"/v1/threads/..%2F..%2Fadmin%3Fx%3D1/runs"


async def test_retries_transient_then_succeeds_with_logged_attempts():
    answers = iter([resp(500, err()), resp(503, text="<html/>"), resp(200, {"ok": 1})])
    clock = FakeClock()
    client = make_client(lambda r: next(answers), clock=clock)
    with capture_logs() as logs:
        result = await client.get(("threads", "t"))
    assert result.body == {"ok": 1}
    retries = [entry for entry in logs if entry["event"] == "retrying"]
    assert [entry["attempt"] for entry in retries] == [1, 2]
    assert all(entry["delay"] > 0 for entry in retries)
    assert len(clock.sleeps) == 2


async def test_retry_after_is_honoured_and_pauses_every_request():
    answers = iter([resp(429, err("slow down"), headers={"retry-after": "7"}), resp(200, {})])
    clock = FakeClock()
    client = make_client(lambda r: next(answers), clock=clock)
    await client.get(("threads", "t"))
    # the policy waited at least Retry-After, and the gate holds other requests until then too
    assert sum(clock.sleeps) >= 7.0
    assert client.gate.paused_until >= 1000.0 + 7.0


async def test_gives_up_after_attempts_and_raises_last_error():
    clock = FakeClock()
    client = make_client(lambda r: resp(502, err("bad gateway")), clock=clock, attempts=3)
    with pytest.raises(TransientError, match="502"):
        await client.get(("threads", "t"))
    assert len(clock.sleeps) == 2


async def test_backoff_grows_and_is_capped():
    clock = FakeClock()
    client = make_client(lambda r: resp(500, err()), clock=clock, attempts=8)
    with pytest.raises(TransientError):
        await client.get(("threads", "t"))
    assert clock.sleeps[0] < clock.sleeps[3]
    assert max(clock.sleeps) <= 8.0


async def test_connection_errors_and_timeouts_are_retried():
    calls = iter([httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), None])

    def handler(request):
        exc = next(calls)
        if exc is not None:
            raise exc
        return httpx.Response(200, json={"ok": True})

    client = make_client(handler)
    assert (await client.get(("threads", "t"))).body == {"ok": True}


async def test_permanent_errors_are_not_retried():
    count = 0

    def handler(request):
        nonlocal count
        count += 1
        return httpx.Response(400, json=err("bad"))

    with pytest.raises(PermanentError):
        await make_client(handler).get(("threads", "t"))
    assert count == 1


async def test_401_says_key_refused_without_the_key():
    body = err(f"Incorrect API key provided: {KEY}. You can find your API key at ...")
    client = make_client(lambda r: httpx.Response(401, json=body))
    with pytest.raises(AuthError) as info:
        await client.get(("threads", "t"))
    assert "API key was refused" in str(info.value)
    assert KEY not in str(info.value)
    assert "sk-test" not in str(info.value)


async def test_404_before_any_success_flags_missing_api():
    answers = iter(
        [
            httpx.Response(404, text="Not Found"),
            httpx.Response(200, json={}),
            httpx.Response(404, json=err("No run found with id 'run_x'.")),
        ]
    )
    client = make_client(lambda r: next(answers))
    with pytest.raises(NotFoundError) as first:
        await client.get(("threads", "t"))
    assert first.value.api_missing
    await client.get(("threads", "t"))
    with pytest.raises(NotFoundError) as later:
        await client.get(("threads", "t"))
    assert not later.value.api_missing


async def test_redirects_are_not_followed():
    client = make_client(lambda r: httpx.Response(302, headers={"location": "https://evil.test/"}))
    with pytest.raises(PermanentError):
        await client.get(("threads", "t"))


async def test_poll_after_header():
    client = make_client(
        lambda r: httpx.Response(200, json={}, headers={"openai-poll-after-ms": "1500"})
    )
    assert (await client.get(("threads", "t"))).poll_after == 1.5


async def test_a_user_agent_of_the_users_replaces_ours_whatever_its_case():
    seen = []

    def handler(request: httpx.Request):
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    client = make_client(handler, headers={"user-agent": "acme-gateway/1"})
    await client.get(("responses", "resp_1"))
    assert seen[0].headers.get_list("user-agent") == ["acme-gateway/1"]
