"""Diagnostics: structlog to stderr, configured once at the entry point.

JSON lines when stderr is not a terminal, readable lines when it is (`fmt` overrides).
Secrets handed to `configure` are scrubbed from every value as a last line of defence, in
every escaped form they can take (`repr`, JSON, bytes), and inside nested values and
exceptions too. Under systemd (`journal_stream` matches stderr) each line starts with its
syslog priority, `<N>` as sd-daemon(3) describes, so `journalctl -p warning` filters them.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

from watcher.core.scrub import MASK, forms
from watcher.core.textsafe import visible

__all__ = ["FORMATS", "configure", "is_journal_stream"]

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
FORMATS = ("json", "console")
#: syslog priorities of sd-daemon(3) by structlog method name
_PRIORITY = {"debug": 7, "info": 6, "warning": 4, "warn": 4, "error": 3, "exception": 3}


class _Stderr:
    """Writes to whatever `sys.stderr` is at the time: the live view redirects it, so a log
    line prints above the view instead of tearing it."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def is_journal_stream(value: str | None, stream: TextIO) -> bool:
    """`$JOURNAL_STREAM` ("device:inode") names the file `stream` is: systemd's journal."""
    if not value:
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return value == f"{st.st_dev}:{st.st_ino}"


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


def _visible(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """On a terminal: control characters in values (API text) shown as escapes."""
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = visible(value)
    return event_dict


def _priority_prefix(_: Any, method: str, rendered: Any) -> Any:
    """After the renderer: the line, prefixed with its priority."""
    return f"<{_PRIORITY.get(method, 6)}>{rendered}"


class _PriorityFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        pri = 3 if record.levelno >= logging.ERROR else 4 if record.levelno >= 30 else 6
        return f"<{pri}>{super().format(record)}"


def configure(
    level: str = "info",
    *,
    secrets: Iterable[str | None] = (),
    stream: TextIO | None = None,
    fmt: str | None = None,
    priority_prefix: bool = False,
) -> None:
    """`fmt` "json" or "console" (None: console on a terminal); `priority_prefix` under
    systemd's journal."""
    out: Any = stream or _Stderr()
    pretty = fmt == "console" if fmt else out.isatty()
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer(colors=False)
        if pretty
        else structlog.processors.JSONRenderer()
    )
    processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _scrubber([s for s in secrets if s]),
        *([_visible] if pretty else []),  # JSON lines escape them already
        renderer,
    ]
    if priority_prefix:
        processors.append(_priority_prefix)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, 20)),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    # libraries (uvicorn, httpx) log through stdlib logging: warnings only, and to stderr
    handler = logging.StreamHandler(out)
    if priority_prefix:
        handler.setFormatter(_PriorityFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
