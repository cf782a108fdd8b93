"""Where events go out in-process: JSON lines on stdout (durable through the store)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TextIO

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
        self.stream.write("".join(body + "\n" for body in bodies))
        self.stream.flush()
