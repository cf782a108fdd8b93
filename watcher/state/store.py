"""The SQLite state file: last reported statuses, watches, and events not yet delivered.

`Store` opens (and upgrades, `migrations`) the file and joins its parts: the watches
(`store_watches`), the statuses and events (`store_events`), the webhook outbox
(`store_outbox`). All methods are short synchronous transactions; the daemon uses them
through `AsyncStore` (`astore`), which is the `StateStore` a second backend would implement.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from watcher.state.migrations import COMPAT, LATEST, check, upgrade
from watcher.state.retention import prune
from watcher.state.statefile import StateError, prepare
from watcher.state.store_events import EventTables
from watcher.state.store_outbox import OutboxTables
from watcher.state.store_protocol import StoreError
from watcher.state.store_records import OutboxItem, PendingEvent, RunWatch, ThreadWatch
from watcher.state.store_watches import WatchTables

__all__ = [
    "LATEST",
    "SCHEMA_VERSION",
    "OutboxItem",
    "PendingEvent",
    "RunWatch",
    "StateError",
    "Store",
    "StoreError",
    "ThreadWatch",
]

#: The schema's lineage (`meta.schema_version`); the steps applied are `LATEST`.
SCHEMA_VERSION = COMPAT


class Store(WatchTables, EventTables, OutboxTables):
    """One SQLite file (WAL), at the latest schema once open."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._claims = {}
        prepare(self.path)  # 0600 (directory 0700) whatever the umask; no symlink
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            try:
                self._open()
            except BaseException:
                self._db.close()
                raise
        except sqlite3.DatabaseError as exc:
            raise StateError(f"state file {self.path}: {exc}") from None

    def _open(self) -> None:
        self._db.execute("PRAGMA busy_timeout = 5000")
        check(self._db, self.path)  # before anything writes to the file
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        upgrade(self._db, self.path, time.time())

    def close(self) -> None:
        self._db.close()

    def get_meta(self, key: str) -> str | None:
        """A value kept across restarts (e.g. the end of a 429 pause), None when unset."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def prune(self, cutoff: float) -> Iterator[int]:
        """What finished before `cutoff` goes, one short transaction per step (`retention`)."""
        return prune(self._db, cutoff)
