"""Where events go out in-process: JSON lines on stdout (durable through the store)."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn, Protocol, TextIO

__all__ = ["JsonLinesSink", "LineSink"]


class LineSink(Protocol):
    """A sink that takes already-encoded event envelopes, in order, synchronously."""

    name: str

    def write(self, bodies: Sequence[str]) -> None: ...


class JsonLinesSink:
    """One JSON object per line. Each batch (one poll's events) is flushed as soon as it is
    written, so no line ever waits for a later event: `tail -f` and pipes see each at once."""

    name = "stdout"

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, bodies: Sequence[str]) -> None:
        try:
            self.stream.write("".join(body + "\n" for body in bodies))
            self.stream.flush()
        except BrokenPipeError:
            reader_left()


def reader_left() -> NoReturn:
    """`… | head -1`: stdout's reader has gone. End as SIGPIPE would end a shell tool (the
    shell sees 141), at once and quietly, rather than retry every poll. What was recorded
    and not written stays pending in the state and goes out at the next start, as after any
    crash (`watch` keeps nothing: its reader is gone)."""
    try:
        sys.stderr.flush()
    finally:
        os._exit(128 + signal.SIGPIPE)
