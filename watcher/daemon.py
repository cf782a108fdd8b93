"""Wiring for one process: build the parts from Settings inside the event loop, run, stop.

Signal handlers only set flags: SIGTERM/SIGINT ask the watcher to stop (a second one stops
at once), SIGHUP asks for a reload. systemd hears READY, STATUS, WATCHDOG, RELOADING and
STOPPING through the notifier passed in.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from typing import Protocol, TextIO

import anyio
import httpx
import structlog

from watcher.app import Observer, Watcher
from watcher.client import ApiClient
from watcher.clock import AnyioClock
from watcher.config import ConfigError, Settings
from watcher.metrics import Metrics
from watcher.notify import watchdog_loop
from watcher.ratelimit import RateGate
from watcher.scheduler import TICK
from watcher.sinks import JsonLinesSink, LineSink
from watcher.store import Store

__all__ = ["Notify", "serve"]

log = structlog.get_logger("watcher.daemon")

Reloader = Callable[[], Settings]
STATUS_EVERY = 10.0


class Notify(Protocol):
    """What the daemon tells its supervisor (systemd's notify protocol, or nothing)."""

    @property
    def watchdog_interval(self) -> float | None: ...

    def ready(self) -> None: ...

    def status(self, text: str) -> None: ...

    def reloading(self, monotonic_usec: int) -> None: ...

    def stopping(self) -> None: ...

    def watchdog(self) -> None: ...


class _Silent:
    watchdog_interval: float | None = None

    def ready(self) -> None: ...

    def status(self, text: str) -> None: ...

    def reloading(self, monotonic_usec: int) -> None: ...

    def stopping(self) -> None: ...

    def watchdog(self) -> None: ...


def _reload(watcher: Watcher, reloader: Reloader, notify: Notify) -> None:
    notify.reloading(time.monotonic_ns() // 1000)
    try:
        watcher.reload(reloader())
    except ConfigError as exc:
        log.error(
            "reload refused: the new config is bad; the old one stays in force", error=str(exc)
        )
    finally:
        notify.ready()


async def _handle_signals(
    watcher: Watcher, scope: anyio.CancelScope, reloader: Reloader | None, notify: Notify
) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        stopping = False
        async for signum in signals:
            name = signal.Signals(signum).name
            if signum == signal.SIGHUP:
                if reloader is not None and not stopping:
                    log.info("reloading the config", signal=name)
                    _reload(watcher, reloader, notify)
                continue
            if stopping:
                log.warning("second signal: stopping at once", signal=name)
                scope.cancel()
                return
            stopping = True
            log.info("stopping: finishing what is in flight", signal=name)
            notify.stopping()
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


def _status_text(watcher: Watcher) -> str:
    polled = [r.last_poll for r in watcher.runs.values() if r.last_poll]
    last = time.strftime("%H:%M:%S", time.localtime(max(polled))) if polled else "-"
    return f"watching {len(watcher.runs)} runs, {len(watcher.threads)} threads; last poll {last}"


async def _report_status(notify: Notify, status: Callable[[], str]) -> None:
    """STATUS= with the watches and the last poll, now and then."""
    while True:
        notify.status(status())
        await anyio.sleep(STATUS_EVERY)


async def serve(
    settings: Settings,
    *,
    json_out: bool = True,
    exit_when_done: bool = False,
    stop_on_error: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
    stdout: TextIO | None = None,
    handle_signals: bool = True,
    reloader: Reloader | None = None,
    notify: Notify | None = None,
) -> Watcher:
    """Run the watcher until stopped (or until its watches end); return it for its outcomes."""
    stdout = stdout or sys.stdout
    notify = notify or _Silent()
    clock = AnyioClock()
    metrics = Metrics()
    with ExitStack() as stack:
        store = Store(settings.state.path)
        stack.callback(store.close)
        sinks: list[LineSink] = []
        observers: list[Observer] = []
        if json_out and settings.stdout.enabled:
            sinks.append(JsonLinesSink(stdout))
        elif not json_out:
            from rich.console import Console

            from watcher.live import LiveView

            view = stack.enter_context(LiveView(Console(file=stdout)))
            observers.append(view.on_observed)
        webhook = None
        if settings.webhook is not None and not exit_when_done:
            from watcher.webhook import WebhookSink

            webhook = WebhookSink(settings.webhook, store, clock, metrics=metrics)
        client = ApiClient(
            settings.api,
            settings.retry,
            clock=clock,
            gate=RateGate(clock, rate=settings.poll.max_requests_per_second),
            transport=transport,
            max_connections=settings.poll.max_concurrency,
            observer=metrics.observe_request,
            on_abandoned=lambda reason: metrics.api_abandoned.labels(reason=reason).inc(),
        )
        watcher = Watcher(
            settings,
            client=client,
            store=store,
            clock=clock,
            sinks=sinks,
            observers=observers,
            outboxes=[webhook] if webhook else [],
            exit_when_done=exit_when_done,
            stop_on_error=stop_on_error,
            metrics=metrics,
        )
        watcher.on_ready(notify.ready)
        try:
            async with anyio.create_task_group() as tg:
                if handle_signals:
                    tg.start_soon(
                        _handle_signals,
                        watcher,
                        tg.cancel_scope,
                        reloader,
                        notify,
                        name="signals",
                    )
                if webhook is not None:
                    tg.start_soon(_supervised, webhook.run, name="webhook delivery")
                if settings.http is not None:
                    await _start_http(tg, watcher, metrics, settings, webhook)
                tg.start_soon(_report_status, notify, lambda: _status_text(watcher))
                tg.start_soon(
                    lambda: watchdog_loop(
                        notify,
                        progress=lambda: watcher.scheduler.progress,
                        sleep=anyio.sleep,
                        now=anyio.current_time,
                        stale_after=3 * TICK + (notify.watchdog_interval or 0.0),
                    ),
                    name="watchdog",
                )
                await watcher.run()
                notify.stopping()
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await client.aclose()
                if webhook is not None:
                    await webhook.aclose()
    return watcher


async def _start_http(
    tg: anyio.abc.TaskGroup,
    watcher: Watcher,
    metrics: Metrics,
    settings: Settings,
    webhook: object | None,
) -> None:
    from watcher.asgi import serve_asgi
    from watcher.http_api import create_http_app
    from watcher.webhook import SINK

    http = settings.http
    assert http is not None
    token = http.token.get_secret_value() if http.token else None
    app = create_http_app(
        watcher,
        metrics,
        token=token,
        webhook_depth=(lambda: watcher.store.queue_depth(SINK)) if webhook else None,
    )
    ready = anyio.Event()

    def on_ready(port: int) -> None:
        log.info("http endpoint listening", host=http.host, port=port)
        ready.set()

    tg.start_soon(
        lambda: serve_asgi(app, host=http.host, port=http.port, on_ready=on_ready),
        name="http endpoint",
    )
    with anyio.fail_after(10):
        await ready.wait()
