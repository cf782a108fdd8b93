"""What goes wrong on purpose: injected faults, and the OpenAI error shape every error uses.

A fault spec (JSON) applies to the next `count` matching API requests (only /v1, never
/_sim): `{"kind": "status"|"html"|"truncated"|"not_json"|"delay"|"reset"|"mangle",
"status": 429, "count": 1, "match": "runs"|"run"|"steps"|null, "retry_after": 1.5,
"retry_after_ms": 200, "seconds": 2.0}`. Routes: "runs" lists runs, "run" gets one run,
"steps" lists or gets steps; "response", "batches" (list), "batch", "fine_tuning_jobs" (list),
"fine_tuning_job", "file_batch"; null matches all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from watcher.simulator.kinds import ROUTES as LONG_RUNNING_ROUTES

__all__ = ["KINDS", "ROUTES", "Fault", "FaultQueue", "apply_fault", "openai_error", "parse_faults"]

KINDS = frozenset({"status", "html", "truncated", "not_json", "delay", "reset", "mangle"})
ROUTES = frozenset({"runs", "run", "steps", *LONG_RUNNING_ROUTES})
_MESSAGES = {
    429: ("Rate limit reached for requests.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request.", "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


def openai_error(
    status: int,
    message: str,
    *,
    kind: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """`{"error": {"message", "type", "param", "code"}}`, the spec's ErrorResponse."""
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


@dataclass(slots=True)
class Fault:
    """One fault spec; `count` is how many more requests it applies to."""

    kind: str
    count: int = 1
    status: int | None = None
    match: str | None = None
    retry_after: float | None = None
    retry_after_ms: int | None = None
    seconds: float = 1.0


def _number(value: Any, *, integer: bool = False) -> bool:
    kinds = int if integer else int | float
    return isinstance(value, kinds) and not isinstance(value, bool) and value >= 0


def parse_faults(raw: Any) -> list[Fault]:
    """A JSON list of fault specs; `ValueError` naming the bad field."""
    if not isinstance(raw, list):
        raise ValueError("faults: must be a list of fault specs")
    out = []
    for i, spec in enumerate(raw):
        where = f"faults[{i}]"
        if not isinstance(spec, dict) or spec.get("kind") not in KINDS:
            raise ValueError(f"{where}.kind: must be one of {sorted(KINDS)}")
        if spec.get("match") not in (None, *ROUTES):
            raise ValueError(f"{where}.match: must be one of {sorted(ROUTES)} or null")
        status = spec.get("status")
        if status is not None and not (_number(status, integer=True) and 100 <= status <= 599):
            raise ValueError(f"{where}.status: must be an HTTP status")
        for name, integer in (("count", True), ("retry_after_ms", True), ("retry_after", False)):
            if spec.get(name) is not None and not _number(spec[name], integer=integer):
                raise ValueError(f"{where}.{name}: must be a number >= 0")
        if not _number(spec.get("seconds", 1.0)):
            raise ValueError(f"{where}.seconds: must be a number >= 0")
        fields = ("count", "status", "match", "retry_after", "retry_after_ms", "seconds")
        out.append(Fault(kind=spec["kind"], **{k: spec[k] for k in fields if k in spec}))
    return out


class FaultQueue:
    """Faults in the order added; the first one matching a request applies to it."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self.injected: dict[str, int] = {}  # kind → requests it applied to

    def add(self, faults: list[Fault]) -> None:
        self._faults.extend(f for f in faults if f.count > 0)

    def pending(self) -> int:
        return sum(f.count for f in self._faults)

    def take(self, route: str) -> Fault | None:
        """The fault for the next request on `route`, if any; it is used up once."""
        for fault in self._faults:
            if fault.match is None or fault.match == route:
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                self.injected[fault.kind] = self.injected.get(fault.kind, 0) + 1
                return fault
        return None


class _Reset(Response):
    """Headers promise more body than is ever sent, then the app ends: uvicorn closes the
    connection mid-response and the client sees a transport error."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self.body) + 1000).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        half = self.body[: len(self.body) // 2]
        await send({"type": "http.response.body", "body": half, "more_body": True})


def _mangled(response: Response) -> Response:
    """A 2xx whose objects lost a required field or grew unknown ones (a drifting server)."""
    if response.status_code != 200:
        return response
    body = json.loads(bytes(response.body))
    objects = body["data"] if isinstance(body.get("data"), list) else [body]
    for i, obj in enumerate(objects):
        obj["x_future_field"] = {"nested": [1, 2, 3]}
        if i == 0:
            obj.pop("status", None)
    return JSONResponse(body, status_code=200)


def _html(status: int) -> Response:
    title = {502: "502 Bad Gateway", 503: "503 Service Temporarily Unavailable"}
    head = title.get(status, f"{status} Error")
    page = f"<html>\r\n<head><title>{head}</title></head>\r\n<body>\r\n<center><h1>{head}</h1>"
    page += "</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    return Response(page, status_code=status, media_type="text/html")


async def apply_fault(fault: Fault, make: Callable[[], Response]) -> Response:
    """The answer to a request hit by `fault`; `make` builds the normal answer."""
    if fault.kind == "delay":
        await anyio.sleep(fault.seconds)  # real time: a slow server
        return make()
    if fault.kind == "status":
        status = fault.status or 500
        headers = {}
        if fault.retry_after is not None:
            headers["retry-after"] = str(fault.retry_after)
        if fault.retry_after_ms is not None:
            headers["retry-after-ms"] = str(fault.retry_after_ms)
        default = (f"Simulated HTTP {status}.", "api_error", None)
        message, kind, code = _MESSAGES.get(status, default)
        return openai_error(status, message, kind=kind, code=code, headers=headers)
    if fault.kind == "html":
        return _html(fault.status or 503)
    if fault.kind == "not_json":  # a captive portal or a login page
        page = "<!DOCTYPE html><html><head><title>Sign in</title></head><body>Sign in</body></html>"
        return Response(page, media_type="text/html")
    if fault.kind == "mangle":
        return _mangled(make())
    body = bytes(make().body)
    if fault.kind == "truncated":
        return Response(body[: len(body) // 2], media_type="application/json")
    return _Reset(body)
