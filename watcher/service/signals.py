"""What the daemon hears from and tells its supervisor: signals (SIGTERM/SIGINT stop, a
second one at once; SIGHUP reloads the config) and systemd's notify protocol (`Notify`)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import anyio
import structlog

from watcher.config.settings import ConfigError, Settings
from watcher.watching.app import Watcher

__all__ = ["Notify", "ReloadHook", "Reloader", "Silent", "handle_signals", "reload"]

log = structlog.get_logger("watcher.daemon")  # the logger's name is kept

Reloader = Callable[[], Settings]
ReloadHook = Callable[[Settings], None]  # applies a part of the new settings live


class Notify(Protocol):
    """What the daemon tells its supervisor (systemd's notify protocol, or nothing)."""

    @property
    def watchdog_interval(self) -> float | None: ...

    def ready(self) -> None: ...

    def status(self, text: str) -> None: ...

    def reloading(self, monotonic_usec: int) -> None: ...

    def stopping(self) -> None: ...

    def watchdog(self) -> None: ...


class Silent:
    """No supervisor listening (a shell, a test)."""

    watchdog_interval: float | None = None

    def ready(self) -> None: ...

    def status(self, text: str) -> None: ...

    def reloading(self, monotonic_usec: int) -> None: ...

    def stopping(self) -> None: ...

    def watchdog(self) -> None: ...


async def reload(
    watcher: Watcher, reloader: Reloader, notify: Notify, hooks: Sequence[ReloadHook] = ()
) -> None:
    notify.reloading(time.monotonic_ns() // 1000)
    try:
        new = reloader()
        await watcher.reload(new)
        for hook in hooks:
            hook(new)
    except ConfigError as exc:
        log.error(
            "reload refused: the new config is bad; the old one stays in force", error=str(exc)
        )
    finally:
        notify.ready()


async def handle_signals(
    watcher: Watcher,
    scope: anyio.CancelScope,
    reloader: Reloader | None,
    notify: Notify,
    hooks: Sequence[ReloadHook] = (),
) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        stopping = False
        async for signum in signals:
            name = signal.Signals(signum).name
            if signum == signal.SIGHUP:
                if reloader is not None and not stopping:
                    log.info("reloading the config", signal=name)
                    await reload(watcher, reloader, notify, hooks)
                continue
            if stopping:
                log.warning("second signal: stopping at once", signal=name)
                scope.cancel()
                return
            stopping = True
            watcher.stopped_by = signum  # `watch` exits 128 + signum, as a shell expects
            log.info("stopping: finishing what is in flight", signal=name)
            notify.stopping()
            watcher.stop()
