"""Wiring for one process: build the parts from Settings inside the event loop, run, stop.

Signal handlers only ask the watcher to stop; a second signal stops at once.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from typing import TextIO

import anyio
import httpx
import structlog

from watcher.app import EventListener, Watcher
from watcher.client import ApiClient
from watcher.clock import AnyioClock
from watcher.config import Settings
from watcher.ratelimit import RateGate
from watcher.sinks import JsonLinesSink, LineSink
from watcher.store import Store

__all__ = ["serve"]

log = structlog.get_logger("watcher.daemon")


async def _handle_signals(watcher: Watcher, scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        stopping = False
        async for signum in signals:
            name = signal.Signals(signum).name
            if stopping:
                log.warning("second signal: stopping at once", signal=name)
                scope.cancel()
                return
            stopping = True
            log.info("stopping: finishing what is in flight", signal=name)
            watcher.stop()


async def _supervised(loop: Callable[[], Awaitable[None]]) -> None:
    """A long-lived task that must not end: an unexpected end is a bug, logged, restarted."""
    while True:
        try:
            await loop()
        except Exception:
            log.exception("bug: a background task crashed; restarting it", task=loop.__qualname__)
        else:
            log.error("bug: a background task ended; restarting it", task=loop.__qualname__)
        await anyio.sleep(1.0)


async def serve(
    settings: Settings,
    *,
    json_out: bool = True,
    exit_when_done: bool = False,
    stop_on_error: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
    stdout: TextIO | None = None,
    handle_signals: bool = True,
) -> Watcher:
    """Run the watcher until stopped (or until its watches end); return it for its outcomes."""
    stdout = stdout or sys.stdout
    clock = AnyioClock()
    with ExitStack() as stack:
        store = Store(settings.state.path)
        stack.callback(store.close)
        sinks: list[LineSink] = []
        listeners: list[EventListener] = []
        if json_out and settings.stdout.enabled:
            sinks.append(JsonLinesSink(stdout))
        else:
            from rich.console import Console

            from watcher.live import LiveView

            view = stack.enter_context(LiveView(Console(file=stdout)))
            listeners.append(view.on_events)
        webhook = None
        if settings.webhook is not None and not exit_when_done:
            from watcher.webhook import WebhookSink

            webhook = WebhookSink(settings.webhook, store, clock)
        client = ApiClient(
            settings.api,
            settings.retry,
            clock=clock,
            gate=RateGate(clock, rate=settings.poll.max_requests_per_second),
            transport=transport,
            max_connections=settings.poll.max_concurrency,
        )
        watcher = Watcher(
            settings,
            client=client,
            store=store,
            clock=clock,
            sinks=sinks,
            listeners=listeners,
            outboxes=[webhook] if webhook else [],
            exit_when_done=exit_when_done,
            stop_on_error=stop_on_error,
        )
        try:
            async with anyio.create_task_group() as tg:
                if handle_signals:
                    tg.start_soon(_handle_signals, watcher, tg.cancel_scope, name="signals")
                if webhook is not None:
                    tg.start_soon(_supervised, webhook.run, name="webhook delivery")
                await watcher.run()
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await client.aclose()
                if webhook is not None:
                    await webhook.aclose()
    return watcher
