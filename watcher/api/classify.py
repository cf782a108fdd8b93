"""An API answer sorted at the boundary: the JSON body of a 2xx, or the `ApiError` its
status means (retryable: 408, 409, 429, 5xx; refused key: 401, 403; not found; other 4xx)."""

from __future__ import annotations

import re
from typing import Any

import httpx

from watcher.api.bodies import parse_json
from watcher.core.errors import (
    AuthError,
    BadResponseError,
    NotFoundError,
    PermanentError,
    RateLimitedError,
    TransientError,
)
from watcher.core.rate_headers import parse_retry_after

__all__ = ["TRANSIENT_STATUSES", "classify"]

TRANSIENT_STATUSES = frozenset({408, 409, 429})


def _error_message(response: httpx.Response) -> str:
    try:
        body = parse_json(response.content)  # strict, and never a RecursionError
        message = body["error"]["message"]
        if isinstance(message, str):
            return message[:300]
    except (ValueError, KeyError, TypeError):
        pass
    ctype = response.headers.get("content-type", "").split(";")[0] or "no content type"
    return f"non-JSON body ({ctype}, {len(response.content)} bytes)"


def classify(response: httpx.Response, *, api_missing: bool = False) -> Any:
    """Return the JSON body of a 2xx, or raise the right `ApiError`."""
    status = response.status_code
    if 200 <= status < 300:
        try:
            return parse_json(response.content)
        except ValueError as exc:
            where = f"GET {response.request.url.path}"
            raise BadResponseError(
                f"{where}: HTTP {status} but the body is not valid JSON ({exc})", status=status
            ) from None
    message = f"GET {response.request.url.path}: HTTP {status}: {_error_message(response)}"
    if status == 429:
        raise RateLimitedError(
            message, status=status, retry_after=parse_retry_after(response.headers)
        )
    if status in TRANSIENT_STATUSES or status >= 500:
        raise TransientError(
            message, status=status, retry_after=parse_retry_after(response.headers)
        )
    if status in (401, 403):
        raise AuthError(f"the API key was refused ({message})", status=status)
    if status == 404:
        # "No run found with id …" is the API saying the object is missing; anything else
        # (HTML, another JSON shape, "Invalid URL") before any success: no API there at all
        missing_object = re.match(r"No [\w ]+ found", _error_message(response)) is not None
        raise NotFoundError(message, api_missing=api_missing and not missing_object)
    raise PermanentError(message, status=status)
