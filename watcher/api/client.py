"""The only module that talks HTTP to the API: headers, auth, retries (an answer is sorted
into a body or an error by `classify`).

It knows nothing of runs or steps: it GETs a path of segments and returns JSON.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import structlog

from watcher import __version__
from watcher.api.bodies import TooLargeError, read_capped
from watcher.api.classify import classify
from watcher.api.idle_check import lighten
from watcher.api.ratelimit import RateGate
from watcher.api.retry import retry_policy
from watcher.config.settings import ApiSettings, RetrySettings
from watcher.core.clock import Clock
from watcher.core.errors import ApiError, BadResponseError, RateLimitedError, TransientError
from watcher.core.rate_headers import parse_poll_after, parse_rate_hint, parse_retry_after
from watcher.core.scrub import scrub

__all__ = ["ApiClient", "ApiResponse", "classify", "parse_retry_after", "redact"]

log = structlog.get_logger("watcher.client")

_KEYLIKE = re.compile(r"\b(sk-|whsec_)[A-Za-z0-9_*\-]{4,}")


QueryItems = list[tuple[str, str | int | float | bool | None]]
RequestObserver = Callable[[int | None, float, float], None]  # (status, seconds, unix time)


@dataclass(frozen=True, slots=True)
class ApiResponse:
    body: Any
    poll_after: float | None  # seconds, from `openai-poll-after-ms`


def redact(text: str, *secrets: str | None) -> str:
    """Remove secrets (escaped forms too), and anything shaped like an OpenAI key."""
    return _KEYLIKE.sub(r"\1***", scrub(text, [s for s in secrets if s]))


def _shown(url: str) -> str:
    """The URL a request tried, without any user:password in it."""
    return str(httpx.URL(url).copy_with(userinfo=b""))


class ApiClient:
    """GET JSON from the API with auth headers, pacing and retries.

    The transport is the seam: tests pass `httpx.MockTransport` or an ASGI transport.
    """

    def __init__(
        self,
        api: ApiSettings,
        retry: RetrySettings,
        *,
        clock: Clock,
        gate: RateGate,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 16,
        observer: RequestObserver | None = None,
        interval: float | None = None,
        on_abandoned: Callable[[str], None] | None = None,
    ) -> None:
        self.api = api
        self.retry = retry
        self.clock = clock
        self.gate = gate
        self.observer = observer
        self.interval = interval  # a first transient failure retries within this (or Retry-After)
        self.on_abandoned = on_abandoned  # "too_large" | "timed_out": a response given up on
        self.successes = 0
        self._secret = api.api_key.get_secret_value() if api.api_key else None
        headers = httpx.Headers(
            {"User-Agent": f"runstep-watcher/{__version__}", "Accept": "application/json"}
        )
        if api.organization:
            headers["OpenAI-Organization"] = api.organization
        if api.project:
            headers["OpenAI-Project"] = api.project
        headers.update(api.headers)  # the user's win, whatever their case
        if self._secret:
            if api.api_key_header.lower() == "authorization":
                headers["Authorization"] = f"Bearer {self._secret}"
            else:
                headers[api.api_key_header] = self._secret
        self._headers = headers
        #: the headers merged with each source's own (the user's [api] headers win), by source
        self._merged: dict[tuple[tuple[str, str], ...], httpx.Headers] = {}
        self._timeout = httpx.Timeout(api.timeout).as_dict()
        # Requests go straight to the transport: this client needs no cookies, redirects,
        # auth flows or event hooks, and skipping them saves ~15% of the CPU of a poll.
        self._transport = transport or lighten(
            httpx.AsyncHTTPTransport(
                http2=api.http2,
                proxy=api.proxy.get_secret_value() if api.proxy else None,
                limits=httpx.Limits(
                    max_connections=max_connections, max_keepalive_connections=max_connections
                ),
            )
        )

    def url(self, segments: Sequence[str]) -> str:
        """Every path segment escaped, whatever was validated before."""
        return self.api.base_url + "/" + "/".join(quote(s, safe="") for s in segments)

    def _observe(self, code: int | None, started: float) -> None:
        if self.observer is not None:
            self.observer(code, self.clock.now() - started, self.clock.wall())

    def _abandoned(self, reason: str, started: float) -> None:
        self._observe(None, started)
        if self.on_abandoned is not None:
            self.on_abandoned(reason)

    def _headers_with(self, extra: Mapping[str, str] | None) -> httpx.Headers:
        """Our headers and a source's (`OpenAI-Beta` for Assistants), merged once per source."""
        if not extra:
            return self._headers
        key = tuple(extra.items())
        merged = self._merged.get(key)
        if merged is None:
            # the source's first, as `OpenAI-Beta` always was; [api] headers override it
            merged = httpx.Headers({k: v for k, v in extra.items()})
            merged.update(self._headers)
            self._merged[key] = merged
        return merged

    async def _send_once(self, url: str, params: QueryItems, headers: httpx.Headers) -> ApiResponse:
        sent_at = await self.gate.wait()
        started = self.clock.now()
        request = httpx.Request(
            "GET", url, params=params, headers=headers, extensions={"timeout": self._timeout}
        )
        try:
            # `timeout` bounds the whole exchange: a server trickling a byte at a time
            # never resets it (httpx's own timeouts are per read)
            with anyio.fail_after(self.api.timeout):
                response = await self._transport.handle_async_request(request)
                response.request = request
                try:
                    await read_capped(response, self.api.max_response_bytes)
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException) as exc:
            self._abandoned("timed_out", started)
            what = "the exchange" if isinstance(exc, TimeoutError) else type(exc).__name__
            raise TransientError(
                f"GET {_shown(url)}: timed out after {self.api.timeout}s ({what})"
            ) from None
        except TooLargeError as exc:
            self._abandoned("too_large", started)
            raise BadResponseError(
                f"GET {_shown(url)}: {exc} (the limit is [api] max_response_bytes); abandoned",
                status=exc.status,
            ) from None
        except httpx.TransportError as exc:
            self._observe(None, started)
            raise TransientError(
                f"GET {_shown(url)}: connection error: {type(exc).__name__}: {exc}"
            ) from None
        self._observe(response.status_code, started)
        if response.status_code != 429:
            self.gate.answered(parse_rate_hint(response.headers))
        try:
            body = classify(response, api_missing=self.successes == 0)
        except RateLimitedError as exc:
            self.gate.refused(exc.retry_after, sent_at)
            raise
        self.successes += 1
        return ApiResponse(body=body, poll_after=parse_poll_after(response.headers))

    async def get(
        self,
        segments: Sequence[str],
        params: Sequence[tuple[str, str]] = (),
        *,
        headers: Mapping[str, str] | None = None,
    ) -> ApiResponse:
        """GET with retries on transient errors; raise the last error when they run out.

        `headers` are the source's own (e.g. `OpenAI-Beta`), sent beside ours.
        """
        url = self.url(segments)
        sent = self._headers_with(headers)
        query: QueryItems = [
            *params,
            *self.api.query.items(),
        ]
        try:
            policy = retry_policy(
                self.retry,
                sleep=self.clock.sleep,
                first=self.interval,
                overloaded=self.gate.overloaded,
            )
            async for attempt in policy:
                with attempt:
                    return await self._send_once(url, query, sent)
        except ApiError as exc:
            exc.args = (redact(str(exc), self._secret),)
            raise
        raise AssertionError("unreachable: tenacity re-raises")  # pragma: no cover

    async def aclose(self) -> None:
        await self._transport.aclose()
