"""systemd's notify protocol, by hand: one UTF-8 datagram to $NOTIFY_SOCKET per message.

The protocol is a few lines; the PyPI wrappers are stale or mis-encode UTF-8. Every method
is a no-op when the service manager did not ask for notifications, and a failed send is
logged once, never raised: the daemon must not die because systemd went away.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping

import structlog

__all__ = ["Notifier"]

log = structlog.get_logger("watcher.notify")


class Notifier:
    def __init__(self, address: str | None, *, watchdog_usec: int | None = None) -> None:
        self.address = address
        self._watchdog_usec = watchdog_usec
        self._ready_sent = False
        self._stopping = False
        self._warned = False
        self.sent: list[str] = []  # what went out, for status pages and tests

    @classmethod
    def from_env(cls, env: Mapping[str, str], pid: int) -> Notifier:
        address = env.get("NOTIFY_SOCKET") or None
        usec: int | None = None
        raw = env.get("WATCHDOG_USEC", "")
        owner = env.get("WATCHDOG_PID")
        if raw.isdigit() and int(raw) > 0 and (owner is None or owner == str(pid)):
            usec = int(raw)
        return cls(address, watchdog_usec=usec)

    @property
    def watchdog_interval(self) -> float | None:
        """Half of $WATCHDOG_USEC, in seconds, as sd_watchdog_enabled(3) advises."""
        if self.address is None or self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 2_000_000

    def _send(self, *lines: str) -> None:
        if self.address is None:
            return
        message = "\n".join(lines)
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(target)
                sock.sendall(message.encode("utf-8"))
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("cannot notify the service manager", error=str(exc))
            return
        self.sent.append(message)

    def ready(self) -> None:
        """READY=1 once per ready cycle (again only after `reloading`), never after STOPPING."""
        if self._ready_sent or self._stopping:
            return
        self._ready_sent = True
        self._send("READY=1")

    def reloading(self, monotonic_usec: int) -> None:
        if self._stopping:
            return
        self._ready_sent = False
        self._send("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec}")

    def stopping(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        self._send("STOPPING=1")

    def status(self, text: str) -> None:
        self._send(f"STATUS={text.replace(chr(10), ' ')}")

    def watchdog(self) -> None:
        if self.watchdog_interval is not None:
            self._send("WATCHDOG=1")
