"""The registry of watches: add, remove, reload, reconcile with the config; one page of them.

Each active watch has an entry in the `WatchTable` and a job on the scheduler that runs
the poller's round for it (`watch_jobs`); the store keeps them across restarts.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from watcher.config.settings import PollSettings
from watcher.watching.watch_jobs import WatchJobs

__all__ = ["Registry"]

log = structlog.get_logger("watcher.app")  # the logger's name is kept


class Registry(WatchJobs):
    """Watches added and removed (persisted, then started or stopped), a page of them, and
    [poll] applied to them; starting and stopping their jobs is `WatchJobs`'."""

    async def add_watch(
        self,
        thread_id: str,
        run_id: str | None,
        *,
        source: str = "api",
        include: Sequence[str] | None = None,
    ) -> bool:
        """Watch a run, or a thread's new runs; persisted. Return whether it is new."""
        if run_id:
            created = await self.store.add_run_watch(thread_id, run_id, source, include)
            if created:
                await self.start_watch(thread_id, run_id, include)
        else:
            created = await self.store.add_thread_watch(
                thread_id, source, self.clock.wall(), include
            )
            if created:
                await self.start_thread_watch(thread_id, include, self.clock.wall(), listed=False)
        if created:
            log.info("watch added", thread_id=thread_id, run_id=run_id, source=source)
        return created

    async def remove_watch(self, thread_id: str, run_id: str | None) -> bool:
        """Stop and forget a watch (a thread watch takes the runs it found along)."""
        if run_id:
            found = (thread_id, run_id) in {
                (w.thread_id, w.run_id) for w in await self.store.run_watches()
            }
            await self._drop_run(thread_id, run_id)
        else:
            found = thread_id in {t.thread_id for t in await self.store.thread_watches()}
            self.stop((thread_id, None))
            await self.store.remove_thread_watch(thread_id)
            for w in await self.store.run_watches():
                if w.thread_id == thread_id and w.source in ("thread", "ignored"):
                    await self._drop_run(w.thread_id, w.run_id)
        if found:
            log.info("watch removed", thread_id=thread_id, run_id=run_id)
        return found

    async def _drop_run(self, thread_id: str, run_id: str) -> None:
        self.stop((thread_id, run_id))
        await self.store.remove_run_watch(thread_id, run_id)

    async def at_capacity(self, thread_id: str, run_id: str | None, cap: int) -> bool:
        """`cap` watches or more, and this one not among them (adding it again is fine)."""
        if await self.store.watch_count() < cap:
            return False
        return not await self.store.has_watch(thread_id, run_id)

    async def watches(
        self, *, finished: bool = False, after: tuple[str, str] | None = None, limit: int = 100
    ) -> tuple[list[dict[str, object]], tuple[str, str] | None]:
        """A page of watches (active ones, or all with `finished`), ordered by (thread_id,
        run_id), with what was last seen of each; and the key to ask the next page after."""
        rows = await self.store.watch_page(finished=finished, after=after, limit=limit)
        out: list[dict[str, object]] = []
        for thread_id, run_id, source, done, recorded in rows:
            status, last_poll = self.table.seen(thread_id, run_id)
            status = status or recorded  # a finished watch: its last recorded status
            out.append(
                {
                    "thread_id": thread_id,
                    "run_id": run_id,
                    "source": source,
                    "active": not done,
                    "status": status,
                    "last_poll": last_poll,
                }
            )
        more = len(rows) == limit
        return out, ((rows[-1][0], rows[-1][1] or "") if rows and more else None)

    def apply_poll(self, poll: PollSettings) -> None:
        """[poll] in force from now: the cap, the budget ceiling, include, the cadence."""
        self.scheduler.set_concurrency(poll.max_concurrency)
        self.client.gate.set_ceiling(poll.max_requests_per_second)
        self.client.gate.low_water = max(2, poll.max_concurrency)
        self.client.interval = poll.interval
        for state in self.table.runs.values():
            if state.default_include:
                state.include = tuple(poll.include)
            state.delay = min(max(state.delay, poll.interval), poll.max_interval)
        self.scheduler.pull_in(poll.max_interval)
