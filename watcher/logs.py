"""Diagnostics: structlog to stderr, configured once at the entry point.

JSON lines when stderr is not a terminal, readable lines when it is. Secrets handed to
`configure` are scrubbed from every value as a last line of defence, in every escaped form
they can take (`repr`, JSON, bytes), and inside nested values and exceptions too.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

from watcher.scrub import MASK, forms

__all__ = ["configure"]

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


def _scrubbed(value: Any, masks: list[str]) -> Any:
    if isinstance(value, str):
        for form in masks:
            if form in value:
                value = value.replace(form, MASK)
        return value
    if isinstance(value, dict):
        return {k: _scrubbed(v, masks) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(v, masks) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    text = str(value)  # an exception, a path, a URL: rendered as text, scrubbed as text
    clean = _scrubbed(text, masks)
    return value if clean == text else clean


def _scrubber(secrets: list[str]) -> structlog.types.Processor:
    masks = sorted({f for s in secrets for f in forms(s)}, key=len, reverse=True)

    def scrub(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if masks:
            for key, value in event_dict.items():
                event_dict[key] = _scrubbed(value, masks)
        return event_dict

    return scrub


def configure(
    level: str = "info", *, secrets: Iterable[str | None] = (), stream: TextIO | None = None
) -> None:
    stream = stream or sys.stderr
    pretty = stream.isatty()
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer(colors=False)
        if pretty
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _scrubber([s for s in secrets if s]),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, 20)),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    # libraries (uvicorn, httpx) log through stdlib logging: warnings only, and to stderr
    root = logging.getLogger()
    root.handlers[:] = [logging.StreamHandler(stream)]
    root.setLevel(logging.WARNING)
