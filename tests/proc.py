"""A running CLI process whose stdout events and stderr logs are read as they come."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.cli import popen_cli


class Daemon:
    """Reads stdout (JSON event lines) and stderr (diagnostics) on threads; waits on them."""

    def __init__(self, *args: str, cwd: Path | None = None, **env: str) -> None:
        self.proc = popen_cli(*args, cwd=cwd, **env)
        self.events: list[dict[str, Any]] = []
        self.raw_stdout: list[str] = []
        self.stderr: list[str] = []
        self._changed = threading.Condition()
        self._threads = [
            threading.Thread(target=self._read, args=(self.proc.stdout, True), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, False), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read(self, stream: Any, is_stdout: bool) -> None:
        for line in stream:
            with self._changed:
                if is_stdout:
                    self.raw_stdout.append(line)
                    self.events.append(json.loads(line))
                else:
                    self.stderr.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 20.0, what: str = ""
    ) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"timed out waiting for {what or predicate}; "
                        f"{len(self.events)} events; stderr tail: {''.join(self.stderr[-5:])}"
                    )
                self._changed.wait(min(left, 0.5))

    def wait_events(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        self.wait_for(lambda: len(self.events) >= count, timeout, f"{count} events")
        return list(self.events)

    def wait_log(self, text: str, timeout: float = 20.0) -> None:
        self.wait_for(lambda: any(text in line for line in self.stderr), timeout, repr(text))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self._close(timeout)
        return code

    def _close(self, timeout: float = 10.0) -> None:
        for t in self._threads:
            t.join(timeout)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def wait_exit(self, timeout: float = 30.0) -> int:
        code = self.proc.wait(timeout)
        self._close(timeout)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._close()

    def output(self) -> str:
        return "".join(self.raw_stdout) + "".join(self.stderr)


def expected_pairs(transitions: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(object id, status) pairs the simulator says have happened, first occurrences only."""
    seen: list[tuple[str, str]] = []
    for t in transitions:
        pair = (t["id"] if "id" in t else t["object_id"], t["status"])
        if pair not in seen:
            seen.append(pair)
    return seen


def event_pairs(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["data"]["id"], e["data"]["status"]) for e in events]
