"""A thread's runs, newest first: what a thread watch discovers."""

from __future__ import annotations

from functools import partial

import structlog

from watcher.api.client import ApiClient
from watcher.sources.assistants.objects import HEADERS, PAGE, RUN, is_terminal, parse_object
from watcher.sources.base import MAX_PAGES, Discovery
from watcher.sources.discovery import LOOKBACK_SECONDS, Listing, discover

__all__ = ["LOOKBACK_SECONDS", "discover_runs"]

log = structlog.get_logger("watcher.assistants")  # the logger's name is kept


async def discover_runs(
    client: ApiClient,
    thread_id: str,
    *,
    seen: set[str],
    first: bool,
    started_at: float,
    resume: str | None = None,
    max_pages: int = MAX_PAGES,
) -> Discovery:
    """List the thread's runs, newest first, until a run already seen (`discover`)."""
    listing = Listing(
        segments=("threads", thread_id, "runs"),
        what=f"thread {thread_id} runs",
        params=(("order", "desc"), ("limit", str(PAGE))),
        headers=HEADERS,
        parse=lambda raw: parse_object(raw, RUN, thread_id, None),
        is_terminal=partial(is_terminal, RUN),
        on_malformed=lambda: log.warning("malformed run skipped", thread_id=thread_id),
    )
    return await discover(
        client,
        listing,
        seen=seen,
        first=first,
        started_at=started_at,
        resume=resume,
        max_pages=max_pages,
    )
