"""Listing pages from a server we do not trust: a bounded number per poll, no cursor twice.

A list whose `last_id` comes round again (A, B, A, …) or that never ends must not hold a
poll for ever: a listing stops at `[poll] max_pages` pages, saying where the next one should
carry on, or at the first cursor seen twice.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from watcher.api.client import ApiClient
from watcher.core.errors import BadResponseError
from watcher.core.ids import is_valid_id

__all__ = ["PageBudget", "pages"]


@dataclass(slots=True)
class PageBudget:
    """Pages one poll may read, shared by its listings; what a cut listing leaves."""

    max_pages: int
    used: int = 0
    resume: str | None = None  # the cursor to carry on from, when the budget ran out
    problem: str | None = None  # why a listing stopped before the list's end

    @property
    def spent(self) -> bool:
        return self.used >= self.max_pages


def _page(body: Any, what: str) -> tuple[list[Any], bool]:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise BadResponseError(f"{what}: the response is not a list object")
    return body["data"], body.get("has_more") is True


async def pages(
    client: ApiClient,
    segments: Sequence[str],
    params: Sequence[tuple[str, str]],
    what: str,
    *,
    after: str | None,
    budget: PageBudget,
    headers: Mapping[str, str] | None = None,
) -> AsyncGenerator[list[Any], None]:
    """The items of each page after `after`, until the list ends or the budget runs out.

    The caller may stop early (use `contextlib.aclosing`). `budget.resume` is set when
    the budget ran out before the list's end; `budget.problem` whenever it stopped early.
    """
    cursors = {after}
    while not budget.spent:
        query = [*params, ("after", after)] if after else list(params)
        response = await client.get(segments, query, headers=headers)
        budget.used += 1
        items, has_more = _page(response.body, what)
        yield items
        last = items[-1].get("id") if items and isinstance(items[-1], dict) else None
        if not has_more or not is_valid_id(last):
            return
        assert isinstance(last, str)
        if last in cursors:
            budget.problem = f"the list came back to a cursor it gave before ({last})"
            return
        cursors.add(last)
        after = last
        if budget.spent:
            budget.resume = last
            budget.problem = f"more than [poll] max_pages ({budget.max_pages}) pages"
