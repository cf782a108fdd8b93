"""Bodies from servers we do not trust: read up to a cap, parse as strict JSON.

A body past its cap is abandoned as it streams in (a chunked answer that never ends
included); JSON is refused when it holds `NaN`, `Infinity` or numbers that overflow to
them (we could not re-emit it as valid JSON), or nests too deep to parse.
"""

from __future__ import annotations

import json
import math
from typing import Any

import httpx

from watcher.core.surrogates import may_hold_surrogates, replace_lone_surrogates

__all__ = ["TooLargeError", "parse_json", "read_capped", "read_some"]


class TooLargeError(Exception):
    """A body longer than its cap; `status` is the response's."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


async def read_capped(response: httpx.Response, cap: int) -> bytes:
    """Read the (decoded) body, at most `cap` bytes, into `response.content`."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise TooLargeError(
            f"HTTP {response.status_code} announces {int(declared)} bytes, over {cap}",
            status=response.status_code,
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > cap:
            raise TooLargeError(
                f"HTTP {response.status_code}: the body runs past {cap} bytes",
                status=response.status_code,
            )
        chunks.append(chunk)
    content = b"".join(chunks)
    # what `Response.aread()` does after reading; the body is then `response.content`
    response._content = content
    return content


async def read_some(response: httpx.Response, cap: int) -> bytes:
    """At most `cap` bytes of a body we only glance at (a webhook receiver's reply)."""
    if response.is_stream_consumed:  # read already (a ready-made answer, e.g. in a test)
        return response.content[:cap]
    data = b""
    async for chunk in response.aiter_raw():  # raw: a compressed reply is not inflated
        data += chunk[: cap - len(data)]
        if len(data) >= cap:
            break
    return data


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} overflows a float")
    return value


# one decoder for every answer (`json.loads` with options builds a new one per call)
_STRICT = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite)


def parse_json(content: bytes) -> Any:
    """Strict JSON: ValueError for anything not valid (NaN, overflow, too deep included)."""
    try:
        # what `json.loads` does with bytes: UTF-8, -16 or -32, a BOM dropped
        text = content.decode(json.detect_encoding(content), "surrogatepass")
        value = _STRICT.decode(text)
        # a lone surrogate ("\ud83d") cannot be written as UTF-8 anywhere: U+FFFD instead
        return replace_lone_surrogates(value) if may_hold_surrogates(content) else value
    except RecursionError:
        raise ValueError("nested too deep") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{exc.msg} at byte {exc.pos}") from None
    except UnicodeDecodeError:
        raise ValueError("not UTF-8") from None
