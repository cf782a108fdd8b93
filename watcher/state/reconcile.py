"""Store work done in one turn of the store's thread: the config's watches made true in
the store, and the active watches loaded with what is known of them.

Plain functions of a `Store` (no event loop): `AsyncStore.run` runs each as one call, so
a config of 10,000 watches costs one hand-off to the thread, not 30,000.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from watcher.config.settings import WatchSpec
from watcher.core.transitions import ObjectState
from watcher.state.store import RunWatch, Store, ThreadWatch

__all__ = ["Active", "Reconciled", "load_active", "reconcile_config_watches"]

Key = tuple[str, str | None]


@dataclass(slots=True)
class Reconciled:
    added: list[WatchSpec] = field(default_factory=list)
    removed: list[Key] = field(default_factory=list)  # config watches the file dropped
    dropped_runs: list[tuple[str, str]] = field(default_factory=list)  # runs they found
    include_changed: list[WatchSpec] = field(default_factory=list)


def reconcile_config_watches(store: Store, specs: Sequence[WatchSpec], now: float) -> Reconciled:
    """Config watches (source "config") as `specs` say: the others removed (a thread watch
    with the runs it found), new ones added, a changed `include` set. API watches kept."""
    out = Reconciled()
    want = {s.key for s in specs}
    runs = store.run_watches()
    for w in runs:
        if w.source == "config" and (w.thread_id, w.run_id) not in want:
            store.remove_run_watch(w.thread_id, w.run_id)
            out.removed.append((w.thread_id, w.run_id))
    for t in store.thread_watches():
        if t.source == "config" and (t.thread_id, None) not in want:
            store.remove_thread_watch(t.thread_id)
            out.removed.append((t.thread_id, None))
            for w in runs:
                if w.thread_id == t.thread_id and w.source in ("thread", "ignored"):
                    store.remove_run_watch(w.thread_id, w.run_id)
                    out.dropped_runs.append((w.thread_id, w.run_id))
    for spec in specs:
        scope, object_id = spec.key
        if object_id:
            new = store.add_run_watch(scope, object_id, "config", spec.include)
        else:
            new = store.add_thread_watch(scope, "config", now, spec.include)
        if new:
            out.added.append(spec)
        elif store.set_config_include(scope, object_id, spec.include):
            out.include_changed.append(spec)
    return out


@dataclass(slots=True)
class Active:
    runs: list[tuple[RunWatch, dict[str, ObjectState]]]
    threads: list[tuple[ThreadWatch, set[str]]]


def load_active(store: Store) -> Active:
    """Every active run watch with its objects' last statuses; every thread watch with the
    runs it has seen."""
    return Active(
        runs=[
            (w, store.known_states(w.thread_id, w.run_id))
            for w in store.run_watches(active_only=True)
        ],
        threads=[(t, store.runs_of_thread(t.thread_id)) for t in store.thread_watches()],
    )
