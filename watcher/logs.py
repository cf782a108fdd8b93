"""Diagnostics: structlog to stderr, configured once at the entry point.

JSON lines when stderr is not a terminal, readable lines when it is. Secrets handed to
`configure` are scrubbed from every value as a last line of defence.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

from watcher.textsafe import visible

__all__ = ["configure"]

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


def _scrubber(secrets: list[str]) -> structlog.types.Processor:
    def scrub(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        for key, value in event_dict.items():
            if isinstance(value, str):
                for secret in secrets:
                    if secret in value:
                        value = value.replace(secret, "***")
                event_dict[key] = value
        return event_dict

    return scrub


def _visible(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """On a terminal: control characters in values (API text) shown as escapes."""
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = visible(value)
    return event_dict


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
            *([_visible] if pretty else []),  # JSON lines escape them already
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
