"""What the SQLite store's parts share: the connection and a short write transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

__all__ = ["Tables"]


class Tables:
    """A base for the store's parts (watches, events, outbox): one connection, shared."""

    _db: sqlite3.Connection
    #: Heads claimed for delivery, (sink, seq) → (until when, by whom) (`store_outbox`): in
    #: memory, as one process keeps the file; an outcome written for the head ends its claim.
    _claims: dict[tuple[str, int], tuple[float, str]]

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)

    def _unclaim(self, sink: str, seqs: Iterable[int]) -> None:
        if self._claims:
            for seq in seqs:
                self._claims.pop((sink, seq), None)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
