"""The naive way, as the SDK's docs show it: one task per run, list every step each interval.

Usage: python bench/naive_sdk.py BASE_URL RUNS_JSON INTERVAL SECONDS [LIMIT]
Prints one line per observed transition: {"t": unix time, "id": object id, "status": ...}.
As in the docs' example, the steps are listed with the default page size (20) unless LIMIT
is given; the SDK's paginator fetches every page.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import warnings

from openai import AsyncOpenAI

warnings.simplefilter("ignore")  # the SDK marks the Assistants API deprecated

TERMINAL = {"cancelled", "failed", "completed", "incomplete", "expired"}


async def watch(
    client: AsyncOpenAI,
    thread_id: str,
    run_id: str,
    interval: float,
    seen: dict[str, str],
    out,
    page: dict[str, int],
) -> None:
    while True:
        run = await client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        steps = []
        async for step in client.beta.threads.runs.steps.list(run_id, thread_id=thread_id, **page):
            steps.append(step)
        for obj in [run, *steps]:
            if seen.get(obj.id) != obj.status:
                seen[obj.id] = obj.status
                out.write(json.dumps({"t": time.time(), "id": obj.id, "status": obj.status}) + "\n")
        out.flush()
        if run.status in TERMINAL and all(s.status in TERMINAL for s in steps):
            return
        await asyncio.sleep(interval)


async def main() -> None:
    base_url, runs_json = sys.argv[1], sys.argv[2]
    interval, seconds = float(sys.argv[3]), float(sys.argv[4])
    runs = json.loads(runs_json)
    page = {"limit": int(sys.argv[5])} if len(sys.argv) > 5 else {}
    client = AsyncOpenAI(api_key="sk-bench", base_url=base_url, max_retries=5)
    seen: dict[str, str] = {}
    tasks = [
        asyncio.create_task(watch(client, t, r, interval, seen, sys.stdout, page)) for t, r in runs
    ]
    await asyncio.wait(tasks, timeout=seconds)
    for task in tasks:
        task.cancel()


if __name__ == "__main__":
    asyncio.run(main())
