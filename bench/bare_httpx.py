"""The floor for our stack: the same requests with httpx, doing nothing with the answers.

Usage: python bench/bare_httpx.py BASE_URL RUNS_JSON INTERVAL SECONDS
"""

from __future__ import annotations

import asyncio
import json
import sys

import httpx

HEADERS = {"Authorization": "Bearer sk-bench", "OpenAI-Beta": "assistants=v2"}


async def loop(client: httpx.AsyncClient, thread_id: str, run_id: str, interval: float) -> None:
    while True:
        await client.get(f"/threads/{thread_id}/runs/{run_id}")
        await client.get(
            f"/threads/{thread_id}/runs/{run_id}/steps", params={"order": "asc", "limit": 100}
        )
        await asyncio.sleep(interval)


async def main() -> None:
    base_url, runs_json = sys.argv[1], sys.argv[2]
    interval, seconds = float(sys.argv[3]), float(sys.argv[4])
    runs = json.loads(runs_json)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(
        base_url=base_url, headers=HEADERS, limits=limits, timeout=30
    ) as client:
        tasks = [asyncio.create_task(loop(client, t, r, interval)) for t, r in runs]
        await asyncio.wait(tasks, timeout=seconds)
        for task in tasks:
            task.cancel()


if __name__ == "__main__":
    asyncio.run(main())
