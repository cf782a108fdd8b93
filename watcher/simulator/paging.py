"""Paging over objects listed by creation time: cursors, `limit`, `order`, `has_more`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["PageQuery", "page_positions"]


@dataclass(frozen=True, slots=True)
class PageQuery:
    """A list request's `limit`, `order`, `after` and `before`, already validated."""

    limit: int = 20
    order: str = "desc"
    after: str | None = None
    before: str | None = None


def page_positions(n: int, position: Mapping[str, int], q: PageQuery) -> tuple[list[int], bool]:
    """Which of the `n` visible items (ascending positions 0..n-1) a page holds, in page
    order, and `has_more`. `before` gives the `limit` items just before it (the previous
    page); an unknown or not yet visible cursor gives an empty page."""

    def seq(cursor: str) -> int | None:
        i = position.get(cursor)
        return None if i is None or i >= n else (i if q.order == "asc" else n - 1 - i)

    start, end = 0, n
    if q.after is not None:
        at = seq(q.after)
        start = n if at is None else at + 1
    if q.before is not None:
        at = seq(q.before)
        end = 0 if at is None else at
    if q.before is not None and q.after is None:
        lo, hi = max(start, end - q.limit), end
        more = lo > start
    else:
        lo, hi = start, min(end, start + q.limit)
        more = hi < end
    picked = range(lo, hi) if q.order == "asc" else range(n - 1 - lo, n - 1 - hi, -1)
    return list(picked), more
