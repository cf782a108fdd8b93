"""The Assistants API as a source: a run and its steps (tail cursor), a thread's runs.

Paths, object kinds, statuses, terminal rules and the `OpenAI-Beta` header live here; the
core sees only `ASSISTANTS`, a `watcher.sources.base.Source`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from watcher.api.client import ApiClient
from watcher.sources.assistants.objects import (
    HEADERS,
    KINDS,
    RUN,
    RUN_TERMINAL,
    SLOW_STATUSES,
    STEP,
    STEP_TERMINAL,
    is_terminal,
    parse_object,
    run_succeeded,
)
from watcher.sources.assistants.runs import observe_run
from watcher.sources.assistants.threads import LOOKBACK_SECONDS, discover_runs
from watcher.sources.base import MAX_PAGES, Discovery, Kind, Observation

__all__ = [
    "ASSISTANTS",
    "HEADERS",
    "KINDS",
    "LOOKBACK_SECONDS",
    "MAX_PAGES",
    "NO_API_MESSAGE",
    "RUN",
    "RUN_TERMINAL",
    "SLOW_STATUSES",
    "STEP",
    "STEP_TERMINAL",
    "AssistantsSource",
    "Discovery",
    "Observation",
    "discover_runs",
    "is_terminal",
    "observe_run",
    "parse_object",
    "run_succeeded",
]


NO_API_MESSAGE = (
    "no Assistants API answers at {base_url}: every call so far answered 404. "
    "OpenAI retired the Assistants API on api.openai.com on 2026-08-26; "
    "point [api] base_url (or OPENAI_BASE_URL) at an Assistants-compatible server"
)


class AssistantsSource:
    """`Source` for the Assistants API: a watch's path is (thread id, run id)."""

    name = "assistants"
    kinds: Mapping[str, Kind] = KINDS
    root = RUN
    headers = HEADERS
    no_api_message: str | None = NO_API_MESSAGE  # the retired API: say so on a bare 404
    objects_expire = False  # a run that answers 404 after being seen is an error

    async def observe(
        self,
        client: ApiClient,
        path: Sequence[str],
        *,
        cursor: str | None,
        include: Sequence[str],
        previous_status: str | None,
        resume: str | None,
        max_pages: int,
    ) -> Observation:
        thread_id, run_id = path
        return await observe_run(
            client,
            thread_id,
            run_id,
            cursor=cursor,
            include=include,
            previous_status=previous_status,
            resume=resume,
            max_pages=max_pages,
        )

    async def discover(
        self,
        client: ApiClient,
        parent: str | None,
        *,
        seen: set[str],
        first: bool,
        started_at: float,
        resume: str | None,
        max_pages: int,
    ) -> Discovery:
        assert parent is not None, "runs are listed per thread"
        return await discover_runs(
            client,
            parent,
            seen=seen,
            first=first,
            started_at=started_at,
            resume=resume,
            max_pages=max_pages,
        )


ASSISTANTS = AssistantsSource()
