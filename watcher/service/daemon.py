"""Wiring for one process: build the parts from Settings inside the event loop, run, stop.

Signal handlers only set flags: SIGTERM/SIGINT ask the watcher to stop (a second one stops
at once), SIGHUP asks for a reload. systemd hears READY, STATUS, WATCHDOG, RELOADING and
STOPPING through the notifier passed in.
"""

from __future__ import annotations

import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Protocol, TextIO

import anyio
import httpx
import structlog

from watcher.api.client import ApiClient
from watcher.api.ratelimit import RateGate
from watcher.config.settings import MAX_CONCURRENCY, ConfigError, Settings
from watcher.core.clock import AnyioClock
from watcher.delivery.sinks import JsonLinesSink, LineSink
from watcher.service.housekeeping import prune_forever
from watcher.service.listen import listen_socket
from watcher.service.metrics import Metrics
from watcher.service.notify import watchdog_loop
from watcher.state.astore import AsyncStore
from watcher.state.state_backend import open_state
from watcher.state.store_protocol import StoreError
from watcher.watching.app import Observer, Watcher
from watcher.watching.scheduler import TICK, Scheduler

if TYPE_CHECKING:
    from watcher.service.http_api import BearerToken

__all__ = ["Notify", "serve"]

log = structlog.get_logger("watcher.daemon")

Reloader = Callable[[], Settings]
ReloadHook = Callable[[Settings], None]  # applies a part of the new settings live
STATUS_EVERY = 10.0
#: A bound on closing the HTTP clients at the end. With the scheduler's grace (2 s) and the
#: HTTP endpoint's close (about 1 s), SIGTERM ends the process within 5 s whatever the API
#: and the webhook receiver do.
CLOSE_SECONDS = 1.0


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


async def _reload(
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


async def _handle_signals(
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
                    await _reload(watcher, reloader, notify, hooks)
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


#: The state file's `meta` key holding the end (unix time) of the global 429 pause.
PAUSE_KEY = "api_pause_until"


class SavedMeta(Protocol):
    def get_meta(self, key: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class _Saved:
    """Values read from the store before (whichever backend), for a sync reader."""

    values: dict[str, str | None]

    def get_meta(self, key: str) -> str | None:
        return self.values.get(key)


class PauseKeeper:
    """A 429 pause that has not run out goes on after a restart: the limit has not reset.

    The gate reports a new pause from inside a request (sync, on the event loop); the end
    is written by `run` through the store's own thread, never beside its transactions.
    """

    def __init__(self, gate: RateGate, store: SavedMeta) -> None:
        try:
            left = gate.restore_pause(float(store.get_meta(PAUSE_KEY) or 0.0))
        except ValueError:
            left = 0.0
        if left > 0:
            log.warning(
                "the API asked to pause before the restart; pausing", seconds=round(left, 1)
            )
        self._end: float | None = None
        self._changed = anyio.Event()
        gate.on_pause = self._note

    def _note(self, end: float) -> None:
        self._end = end
        self._changed.set()

    async def flush(self, store: AsyncStore) -> None:
        """Write the latest pause end, if one came since the last write."""
        end, self._end = self._end, None
        if end is None:
            return
        try:
            await store.set_meta(PAUSE_KEY, f"{end:.3f}")
        except StoreError as exc:
            log.error("cannot write the state file", path=store.path, error=str(exc))

    async def run(self, store: AsyncStore) -> None:
        while True:
            await self._changed.wait()
            self._changed = anyio.Event()
            await self.flush(store)


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
        webhook = None
        if settings.webhook is not None and not exit_when_done:
            from watcher.delivery.webhook import WebhookSink

            webhook = WebhookSink(settings.webhook, astore, clock, metrics=metrics)
        gate = RateGate(
            clock,
            rate=settings.poll.max_requests_per_second,
            low_water=settings.poll.max_concurrency,
        )
        pause_keeper = PauseKeeper(gate, _Saved({PAUSE_KEY: await astore.get_meta(PAUSE_KEY)}))
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
        )
        watcher.on_ready(notify.ready)
        reload_hooks: list[ReloadHook] = []
        try:
            async with anyio.create_task_group() as tg:
                if handle_signals:
                    tg.start_soon(
                        _handle_signals,
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
                    token = await _start_http(
                        tg, watcher, metrics, settings, astore if webhook else None, http_sock
                    )
                    reload_hooks.append(partial(_apply_http_token, token))
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


async def _start_http(
    tg: anyio.abc.TaskGroup,
    watcher: Watcher,
    metrics: Metrics,
    settings: Settings,
    outbox: AsyncStore | None,
    sock: socket.socket,
) -> BearerToken:
    from watcher.delivery.webhook import SINK
    from watcher.service.asgi import ConnectionLimits, serve_asgi
    from watcher.service.http_api import BearerToken, create_http_app
    from watcher.service.http_guards import served_hosts

    http = settings.http
    assert http is not None
    token = BearerToken(http.token.get_secret_value() if http.token else None)
    app = create_http_app(
        watcher,
        metrics,
        token=token,
        webhook_depth=partial(outbox.queue_depth, SINK) if outbox else None,
        hosts=served_hosts(http.host, http.allowed_hosts),
        max_watches=http.max_watches,
    )
    ready = anyio.Event()

    def on_ready(port: int) -> None:
        log.info("http endpoint listening", host=http.host, port=port)
        ready.set()

    tg.start_soon(
        lambda: serve_asgi(
            app,
            host=http.host,
            port=http.port,
            on_ready=on_ready,
            sock=sock,
            limits=ConnectionLimits(
                max_connections=http.max_connections, header_timeout=http.header_timeout
            ),
        ),
        name="http endpoint",
    )
    with anyio.fail_after(10):
        await ready.wait()
    return token


def _apply_http_token(token: BearerToken, new: Settings) -> None:
    """SIGHUP: a new [http] token applies at once (the old one stops working); the rest of
    [http] changes at the next restart (`Watcher.reload` names it)."""
    if new.http is None:
        log.warning("reload: [http] was removed; the endpoint stops at the next restart")
        return
    value = new.http.token.get_secret_value() if new.http.token else None
    if value != token.value:
        token.value = value
        log.info("reload: the [http] token was replaced; the old one no longer works")
