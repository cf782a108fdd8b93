"""One webhook POST: signed anew for each attempt, bounded in time as a whole, its answer
sorted into delivered, retryable or refused for good."""

from __future__ import annotations

from typing import NamedTuple

import anyio
import httpx

from watcher import __version__
from watcher.api.bodies import read_some
from watcher.api.client import parse_retry_after
from watcher.config.settings import WebhookSettings
from watcher.core.clock import Clock
from watcher.delivery.webhook_signing import secret_key, sign
from watcher.state.store_records import OutboxItem

__all__ = ["PostResult", "Poster"]

#: Of a receiver's reply, only this much is read (its status is what counts).
REPLY_BYTES = 4096


class PostResult(NamedTuple):
    ok: bool
    permanent: bool  # refused for good (a 4xx other than 408, 409, 429)
    error: str
    retry_after: float | None


class Poster:
    """Posts events to the configured endpoint with its own HTTP client."""

    def __init__(
        self,
        settings: WebhookSettings,
        clock: Clock,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._keys = [secret_key(s.get_secret_value()) for s in settings.secret]
        self._http = httpx.AsyncClient(
            timeout=settings.timeout, follow_redirects=False, transport=transport, verify=True
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def post(self, item: OutboxItem, body: str) -> PostResult:
        timestamp = int(self.clock.wall())
        # ours, then the user's (a User-Agent of theirs replaces ours, whatever its case),
        # then what the signature rides on (no user header may name those: config checks)
        headers = httpx.Headers({"user-agent": f"runstep-watcher/{__version__}"})
        headers.update(self.settings.headers)
        headers.update(
            {
                "content-type": "application/json",
                "webhook-id": item.event_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": sign(self._keys, item.event_id, timestamp, body),
            }
        )
        try:
            # `timeout` bounds the whole exchange (httpx's is per read: a receiver trickling
            # its reply would hold a delivery slot for ever); of the reply, only a glance
            with anyio.fail_after(self.settings.timeout):
                async with self._http.stream(
                    "POST", self.settings.url, content=body.encode(), headers=headers
                ) as response:
                    await read_some(response, REPLY_BYTES)
        except (TimeoutError, httpx.TimeoutException):
            return PostResult(False, False, f"timed out after {self.settings.timeout}s", None)
        except httpx.TransportError as exc:
            return PostResult(False, False, f"connection error: {type(exc).__name__}", None)
        status = response.status_code
        if 200 <= status < 300:
            return PostResult(True, False, "", None)
        error = f"HTTP {status}"
        if 300 <= status < 400:
            return PostResult(False, False, f"{error} (redirects are not followed)", None)
        if 400 <= status < 500 and status not in (408, 409, 429):
            return PostResult(False, True, f"{error}: the endpoint refused the event", None)
        return PostResult(False, False, error, parse_retry_after(response.headers))
