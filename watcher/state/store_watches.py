"""The watches in the state file: runs and threads, where they came from, how far they got."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from watcher.state.store_base import Tables
from watcher.state.store_records import RunWatch, ThreadWatch, decode_include, encode_include

__all__ = ["WatchTables"]


class WatchTables(Tables):
    """`run_watches` and `thread_watches`."""

    def add_run_watch(
        self, thread_id: str, run_id: str, source: str, include: Sequence[str] | None = None
    ) -> bool:
        """Add a run watch if new; return whether it was added."""
        cur = self._db.execute(
            "INSERT OR IGNORE INTO run_watches (thread_id, run_id, source, include)"
            " VALUES (?, ?, ?, ?)",
            (thread_id, run_id, source, encode_include(include)),
        )
        return cur.rowcount > 0

    def mark_runs_ignored(self, thread_id: str, run_ids: Iterable[str]) -> None:
        """Runs a thread watch found already finished: remembered, never reported."""
        with self._tx():
            self._db.executemany(
                "INSERT OR IGNORE INTO run_watches (thread_id, run_id, source, done, done_at)"
                " VALUES (?, ?, 'ignored', 1, ?)",
                [(thread_id, r, time.time()) for r in run_ids],
            )

    def remove_run_watch(self, thread_id: str, run_id: str) -> None:
        self._db.execute(
            "DELETE FROM run_watches WHERE thread_id = ? AND run_id = ?", (thread_id, run_id)
        )

    def run_watches(self, *, active_only: bool = False) -> list[RunWatch]:
        sql = "SELECT thread_id, run_id, source, include, cursor, done FROM run_watches"
        if active_only:
            sql += " WHERE done = 0"
        return [
            RunWatch(t, r, s, decode_include(i), c, bool(d))
            for t, r, s, i, c, d in self._db.execute(sql + " ORDER BY rowid")
        ]

    def add_thread_watch(
        self, thread_id: str, source: str, started_at: float, include: Sequence[str] | None = None
    ) -> bool:
        cur = self._db.execute(
            "INSERT OR IGNORE INTO thread_watches (thread_id, source, include, started_at)"
            " VALUES (?, ?, ?, ?)",
            (thread_id, source, encode_include(include), started_at),
        )
        return cur.rowcount > 0

    def remove_thread_watch(self, thread_id: str) -> None:
        self._db.execute("DELETE FROM thread_watches WHERE thread_id = ?", (thread_id,))

    def thread_watches(self) -> list[ThreadWatch]:
        rows = self._db.execute(
            "SELECT thread_id, source, include, started_at, listed FROM thread_watches"
            " ORDER BY rowid"
        )
        return [ThreadWatch(t, s, decode_include(i), a, bool(x)) for t, s, i, a, x in rows]

    def set_config_include(
        self, thread_id: str, run_id: str | None, include: Sequence[str] | None
    ) -> bool:
        """A config watch's `include` as the config now says (a thread watch's runs follow);
        whether it changed."""
        value = encode_include(include)
        with self._tx():
            if run_id:
                return (
                    self._db.execute(
                        "UPDATE run_watches SET include = ? WHERE thread_id = ? AND run_id = ?"
                        " AND source = 'config' AND include IS NOT ?",
                        (value, thread_id, run_id, value),
                    ).rowcount
                    > 0
                )
            changed = self._db.execute(
                "UPDATE thread_watches SET include = ? WHERE thread_id = ?"
                " AND source = 'config' AND include IS NOT ?",
                (value, thread_id, value),
            ).rowcount
            if changed:
                self._db.execute(
                    "UPDATE run_watches SET include = ? WHERE thread_id = ? AND source = 'thread'",
                    (value, thread_id),
                )
            return changed > 0

    def watch_page(
        self, *, finished: bool, after: tuple[str, str] | None, limit: int
    ) -> list[tuple[str, str | None, str, bool, str | None]]:
        """(thread_id, run_id or None, source, done, last recorded status) ordered by
        (thread_id, run_id), after the `after` key (a thread watch's run_id is ""); finished
        runs only if asked."""
        rows = self._db.execute(
            "SELECT w.thread_id, w.run_id, w.source, w.done, o.status FROM ("
            " SELECT thread_id, '' AS run_id, source, 0 AS done FROM thread_watches"
            " UNION ALL SELECT thread_id, run_id, source, done FROM run_watches"
            " WHERE source != 'ignored' AND (done = 0 OR ?)) w"
            " LEFT JOIN objects o ON o.object_id = w.run_id AND w.run_id != ''"
            " WHERE (w.thread_id, w.run_id) > (?, ?) ORDER BY w.thread_id, w.run_id LIMIT ?",
            (int(finished), *(after or ("", "")), limit),
        )
        return [(t, r or None, s, bool(d), st) for t, r, s, d, st in rows]

    def watch_count(self) -> int:
        """How many watches `watch_page(finished=True)` lists, in all."""
        row = self._db.execute(
            "SELECT (SELECT COUNT(*) FROM thread_watches)"
            " + (SELECT COUNT(*) FROM run_watches WHERE source != 'ignored')"
        ).fetchone()
        return int(row[0])

    def has_watch(self, thread_id: str, run_id: str | None) -> bool:
        if not run_id:
            sql = "SELECT 1 FROM thread_watches WHERE thread_id = ?"
            return self._db.execute(sql, (thread_id,)).fetchone() is not None
        sql = "SELECT 1 FROM run_watches WHERE thread_id = ? AND run_id = ? AND source != 'ignored'"
        return self._db.execute(sql, (thread_id, run_id)).fetchone() is not None

    def mark_thread_listed(self, thread_id: str) -> None:
        self._db.execute("UPDATE thread_watches SET listed = 1 WHERE thread_id = ?", (thread_id,))

    def runs_of_thread(self, thread_id: str) -> set[str]:
        rows = self._db.execute("SELECT run_id FROM run_watches WHERE thread_id = ?", (thread_id,))
        return {r for (r,) in rows}
