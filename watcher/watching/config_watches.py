"""The config's [[watch]] entries made true, in the store and on this process's scheduler:
at start, and at each reload (added, removed, a changed `include`).

Replicas on one database do it one at a time (the store's `exclusive`, an advisory lock):
N replicas starting together add each watch once; the first one finds the work to do, the
others find it done. A watch removed by one replica is dropped by whichever replica polls
it when its lease goes (`watching.leases`).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, nullcontext
from functools import partial

import structlog

from watcher.config.settings import PollSettings, Settings, WatchSpec
from watcher.state.astore import AsyncStore
from watcher.state.reconcile import Reconciled, reconcile_config_watches
from watcher.watching.registry import Registry

__all__ = ["add_configured_watches", "reconcile"]

log = structlog.get_logger("watcher.app")  # the logger's name is kept


def _exclusive(store: AsyncStore) -> AbstractAsyncContextManager[None]:
    """Replicas on one database make the config's watches true one at a time."""
    shared = store.lease_store
    return shared.exclusive() if shared is not None else nullcontext()


async def _reconciled(registry: Registry, settings: Settings) -> tuple[Reconciled, float]:
    store, now = registry.store, registry.clock.wall()
    async with _exclusive(store):
        fn = partial(reconcile_config_watches, store.sync, settings.watch, now)
        return await store.run(fn), now


async def add_configured_watches(registry: Registry) -> None:
    """Make the store's config watches what the config's [[watch]] entries say.

    Watches the config no longer lists (removed while the daemon was stopped) are
    stopped and forgotten; watches added through the control API are kept.
    """
    done, _now = await _reconciled(registry, registry.settings)
    for thread_id, run_id in done.removed:
        log.info("watch removed: no longer in the config", thread_id=thread_id, run_id=run_id)


async def reconcile(registry: Registry, new: Settings) -> Reconciled:
    """The config's [[watch]] entries of `new` made true: added, removed, `include`."""
    done, now = await _reconciled(registry, new)
    for thread_id, run_id in done.removed:
        registry.stop((thread_id, run_id))
        log.info("watch removed", thread_id=thread_id, run_id=run_id)
    for thread_id, run_id in done.dropped_runs:
        registry.stop((thread_id, run_id))
    for spec in done.added:
        scope, object_id = spec.key
        if object_id:
            await registry.start_watch(scope, object_id, spec.include)
        else:
            await registry.start_thread_watch(scope, spec.include, now, listed=False)
        log.info("watch added", thread_id=scope, run_id=object_id, source="config")
    for spec in done.include_changed:
        await _follow_include(registry, spec, new.poll)
    return done


async def _follow_include(registry: Registry, spec: WatchSpec, poll: PollSettings) -> None:
    """A [[watch]] whose `include` changed: its next polls (and its runs') use the new one."""
    include = tuple(spec.include) if spec.include is not None else None
    scope, object_id = spec.key
    runs = [object_id] if object_id else []
    table = registry.table
    if not object_id and (thread := table.threads.get(scope)) is not None:
        thread.include = include
        runs = [
            w.run_id
            for w in await registry.store.run_watches(active_only=True)
            if w.thread_id == scope and w.source == "thread"
        ]
    for run_id in runs:
        if (state := table.runs.get((scope, run_id))) is not None:
            state.include = include if include is not None else tuple(poll.include)
            state.default_include = include is None
