"""Wiring for one process: build the parts from Settings inside the event loop, run, stop.

Signal handlers only set flags: SIGTERM/SIGINT ask the watcher to stop (a second one stops
at once), SIGHUP asks for a reload. systemd hears READY, STATUS, WATCHDOG, RELOADING and
STOPPING through the notifier passed in.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from functools import partial
from typing import TextIO

import anyio
import httpx
import structlog

from watcher.api.client import ApiClient
from watcher.api.ratelimit import RateGate
from watcher.config.settings import MAX_CONCURRENCY, Settings
from watcher.core.clock import AnyioClock
from watcher.delivery.sinks import JsonLinesSink, LineSink
from watcher.service.housekeeping import prune_forever
from watcher.service.http_endpoint import apply_http_token, start_http
from watcher.service.listen import listen_socket
from watcher.service.metrics import Metrics
from watcher.service.notify import watchdog_loop
from watcher.service.pause_keeper import PAUSE_KEY, PauseKeeper, Saved
from watcher.service.signals import Notify, Reloader, ReloadHook, Silent
from watcher.service.signals import handle_signals as follow_signals
from watcher.state.state_backend import open_state
from watcher.watching.app import Observer, Watcher
from watcher.watching.leases import replica_id
from watcher.watching.scheduler import TICK, Scheduler

__all__ = ["Notify", "serve"]

log = structlog.get_logger("watcher.daemon")

STATUS_EVERY = 10.0
#: A bound on closing the HTTP clients at the end. With the scheduler's grace (2 s) and the
#: HTTP endpoint's close (about 1 s), SIGTERM ends the process within 5 s whatever the API
#: and the webhook receiver do.
CLOSE_SECONDS = 1.0


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
    polled, counts = watcher.last_poll(), watcher.counts()
    last = time.strftime("%H:%M:%S", time.localtime(polled)) if polled else "-"
    return f"watching {counts['runs']} runs, {counts['threads']} threads; last poll {last}"


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
    notify = notify or Silent()
    clock = AnyioClock()
    metrics = Metrics()
    async with AsyncExitStack() as stack:
        # the endpoint's port first: "in use" is an exit code before anything starts
        http_sock = (
            stack.enter_context(listen_socket(settings.http.host, settings.http.port))
            if settings.http is not None
            else None
        )
        astore = await open_state(settings.state, stack)  # SQLite off the event loop, or PG
        sinks: list[LineSink] = []
        observers: list[Observer] = []
        if json_out and settings.stdout.enabled:
            sinks.append(JsonLinesSink(stdout))
        elif not json_out:
            from rich.console import Console

            from watcher.watching.live import LiveView

            view = LiveView(Console(file=stdout), redirect_stderr=sys.stderr.isatty())
            stack.enter_context(view)
            observers.append(view.on_observed)
        replica = replica_id()  # claims webhook deliveries and, on PostgreSQL, leases
        webhook = None
        if settings.webhook is not None and not exit_when_done:
            from watcher.delivery.webhook import WebhookSink

            webhook = WebhookSink(settings.webhook, astore, clock, metrics=metrics, owner=replica)
        gate = RateGate(
            clock,
            rate=settings.poll.max_requests_per_second,
            low_water=settings.poll.max_concurrency,
        )
        pause_keeper = PauseKeeper(gate, Saved({PAUSE_KEY: await astore.get_meta(PAUSE_KEY)}))
        client = ApiClient(
            settings.api,
            settings.retry,
            clock=clock,
            gate=gate,
            transport=transport,
            # the scheduler caps requests in flight (max_concurrency, which a reload may
            # raise); the pool opens no more connections than that, so its own cap is the
            # largest max_concurrency allowed
            max_connections=MAX_CONCURRENCY,
            observer=metrics.observe_request,
            interval=settings.poll.interval,
            on_abandoned=lambda reason: metrics.api_abandoned.labels(reason=reason).inc(),
        )
        scheduler = Scheduler(
            clock, concurrency=settings.poll.max_concurrency, exit_when_idle=exit_when_done
        )
        watcher = Watcher(
            settings,
            client=client,
            store=astore,
            clock=clock,
            scheduler=scheduler,
            sinks=sinks,
            observers=observers,
            outboxes=[webhook] if webhook else [],
            exit_when_done=exit_when_done,
            stop_on_error=stop_on_error,
            metrics=metrics,
            replica=replica,
        )
        watcher.on_ready(notify.ready)
        reload_hooks: list[ReloadHook] = []
        try:
            async with anyio.create_task_group() as tg:
                if handle_signals:
                    tg.start_soon(
                        follow_signals,
                        watcher,
                        tg.cancel_scope,
                        reloader,
                        notify,
                        reload_hooks,
                        name="signals",
                    )
                if webhook is not None:
                    tg.start_soon(_supervised, webhook.run, name="webhook delivery")
                tg.start_soon(
                    _supervised, partial(pause_keeper.run, astore), name="429 pause keeper"
                )
                if not exit_when_done:
                    retention = settings.state.retention
                    tg.start_soon(
                        _supervised,
                        partial(prune_forever, astore, retention=retention, clock=clock),
                        name="state pruning",
                    )
                if settings.http is not None and http_sock is not None:
                    token = await start_http(
                        tg, watcher, metrics, settings, astore if webhook else None, http_sock
                    )
                    reload_hooks.append(partial(apply_http_token, token))
                tg.start_soon(_report_status, notify, lambda: _status_text(watcher))
                tg.start_soon(
                    lambda: watchdog_loop(
                        notify,
                        progress=lambda: scheduler.progress,
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
            with anyio.move_on_after(CLOSE_SECONDS, shield=True) as closing:
                async with anyio.create_task_group() as closers:
                    closers.start_soon(client.aclose)
                    if webhook is not None:
                        closers.start_soon(webhook.aclose)
            if closing.cancelled_caught:
                log.warning("stopping: HTTP connections not closed in time; left to the OS")
    return watcher
