"""systemd's notify protocol, by hand: one UTF-8 datagram to $NOTIFY_SOCKET per message.

The protocol is a few lines; the PyPI wrappers are stale or mis-encode UTF-8. Every method
is a no-op when the service manager did not ask for notifications, and a failed send is
logged once, never raised: the daemon must not die because systemd went away.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

import structlog

__all__ = ["Notifier", "WatchdogTarget", "watchdog_loop"]

log = structlog.get_logger("watcher.notify")

# A datagram to a unix socket blocks only while the receiver's queue is full, i.e. while
# PID 1 is not reading. Bound that wait: this runs on the event loop's thread.
SEND_TIMEOUT = 0.5


class Notifier:
    """Tell systemd READY/STATUS/RELOADING/STOPPING/WATCHDOG, or nothing if it did not ask.

    `address` is $NOTIFY_SOCKET: a filesystem path, or `@name` for an abstract socket.
    `watchdog_usec` is $WATCHDOG_USEC when the watchdog is meant for this process.
    """

    def __init__(self, address: str | None, *, watchdog_usec: int | None = None) -> None:
        self.address = address or None
        self._target = (
            "\0" + address[1:] if address is not None and address.startswith("@") else address
        )
        self._watchdog_usec = watchdog_usec
        self._ready_sent = False
        self._stopping = False
        self._warned = False

    @classmethod
    def from_env(cls, env: Mapping[str, str], pid: int) -> Notifier:
        """From the environment systemd gives the service; `pid` is our own process id."""
        address = env.get("NOTIFY_SOCKET") or None
        usec: int | None = None
        raw = env.get("WATCHDOG_USEC", "").strip()
        owner = env.get("WATCHDOG_PID", "").strip()
        if raw.isdigit() and int(raw) > 0 and (not owner or owner == str(pid)):
            usec = int(raw)
        return cls(address, watchdog_usec=usec)

    @property
    def watchdog_interval(self) -> float | None:
        """Half of $WATCHDOG_USEC, in seconds, as sd_watchdog_enabled(3) advises."""
        if self._target is None or self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 2_000_000

    def _send(self, *lines: str) -> None:
        if self._target is None:
            return
        data = "\n".join(lines).encode("utf-8")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.settimeout(SEND_TIMEOUT)
                sock.sendto(data, self._target)
        except OSError as exc:  # gone, refused, full: systemd's problem, not a reason to die
            if not self._warned:
                self._warned = True
                log.warning(
                    "cannot notify the service manager; further failures are not logged",
                    socket=self.address,
                    error=str(exc),
                )

    def ready(self) -> None:
        """READY=1 once per ready cycle (again only after `reloading`), never after STOPPING."""
        if self._ready_sent or self._stopping:
            return
        self._ready_sent = True
        self._send("READY=1")

    def reloading(self, monotonic_usec: int) -> None:
        """RELOADING=1 with CLOCK_MONOTONIC in µs; the next `ready()` ends the reload."""
        if self._stopping:
            return
        self._ready_sent = False
        self._send("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec}")

    def stopping(self) -> None:
        """STOPPING=1, once; `ready()` is a no-op from now on."""
        if self._stopping:
            return
        self._stopping = True
        self._send("STOPPING=1")

    def status(self, text: str) -> None:
        # A newline would start another KEY=VALUE line: keep the status to one.
        self._send("STATUS=" + text.replace("\n", " "))

    def watchdog(self) -> None:
        if self.watchdog_interval is not None:
            self._send("WATCHDOG=1")


class WatchdogTarget(Protocol):
    """The part of a notifier that `watchdog_loop` needs (a `Notifier`, or a fake)."""

    @property
    def watchdog_interval(self) -> float | None: ...

    def watchdog(self) -> None: ...


async def watchdog_loop(
    notifier: WatchdogTarget,
    *,
    progress: Callable[[], int],
    sleep: Callable[[float], Awaitable[None]],
    stale_after: float,
    now: Callable[[], float],
    iterations: int | None = None,
) -> None:
    """WATCHDOG=1 every `watchdog_interval` seconds, while `progress()` keeps moving.

    `progress` is a counter the scheduler's dispatcher bumps each turn: it turns every tick
    while polls wait on the API, so a slow or silent API never stops the pings. It is
    sampled once per interval; a ping goes out only if its value changed (as seen by a
    sample) within the last `stale_after` seconds. A wedged loop stops the pings, and
    systemd restarts the service after WatchdogSec=. Returns at once when the watchdog is
    disabled; otherwise runs forever, or for `iterations` turns (a test knob).
    """
    interval = notifier.watchdog_interval
    if interval is None:
        return
    last_seen, last_change = progress(), now()
    turns = 0
    while iterations is None or turns < iterations:
        turns += 1
        seen, t = progress(), now()
        if seen != last_seen:
            last_seen, last_change = seen, t
        if t - last_change <= stale_after:
            notifier.watchdog()
        await sleep(interval)
