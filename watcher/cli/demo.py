"""`simulate` and `demo`: the built-in simulator alone, or with the watcher in one process."""

from __future__ import annotations

import argparse
import sys

import anyio
import structlog

from watcher.config.config_file import load_settings, with_watches
from watcher.simulator.scenario import Scenario

__all__ = ["banner", "run_demo", "run_simulator"]

log = structlog.get_logger("watcher.demo")


SHOWN = 5  # threads, and runs of each, that the banner names


def banner(scenario: Scenario, url: str, *, api_key: str | None, loop: bool) -> str:
    """What a person needs to try the simulator: where it is, what it serves, a command."""
    from shlex import quote

    lines = [f"runstep-watcher simulate: a simulated Assistants API at {url}"]
    threads = scenario.threads
    for thread in threads[:SHOWN]:
        runs = [r.id for r in thread.runs]
        more = f", … ({len(runs) - SHOWN} more)" if len(runs) > SHOWN else ""
        lines.append(f"  {thread.id}: {', '.join(runs[:SHOWN])}{more}")
    if len(threads) > SHOWN:
        lines.append(f"  … {len(threads) - SHOWN} more threads")
    lr = scenario.long_running
    for label, ids in (
        ("responses", [o.id for o in lr.responses]),
        ("batches", [o.id for o in lr.batches]),
        ("fine-tuning jobs", [o.id for o in lr.fine_tuning_jobs]),
        ("file batches", [f"{o.vector_store_id}/{o.id}" for o in lr.file_batches]),
    ):
        if ids:
            more = f", … ({len(ids) - SHOWN} more)" if len(ids) > SHOWN else ""
            lines.append(f"  {label}: {', '.join(ids[:SHOWN])}{more}")
    root = url.removesuffix("/v1")
    lines.append(f"  (every object it serves: GET {root}/_sim/scenario)")
    if loop:
        from watcher.simulator.loop import loop_period

        period = loop_period(scenario)
        lines.append(
            f"  --loop: the runs start again every {period:g} s as new runs (ids ending _2, "
            "_3, …): a `run` whose [[watch]] names a thread (no run_id) sees each"
        )
    example = next((t for t in threads if t.runs), None)
    # a run, else the first object of another kind (`watch` knows each by its id's prefix)
    candidates = [[o.id] for o in lr.responses] + [[o.id] for o in lr.batches]
    candidates += [[o.id] for o in lr.fine_tuning_jobs]
    candidates += [[o.vector_store_id, o.id] for o in lr.file_batches]
    if example is not None:
        candidates.insert(0, [example.id, example.runs[0].id])
    if candidates:
        env = f"OPENAI_BASE_URL={quote(url)}"
        if api_key:
            env += f" OPENAI_API_KEY={quote(api_key)}"
        lines.append("Try, in another shell:")
        lines.append(f"  {env} runstep-watcher watch {' '.join(map(quote, candidates[0]))}")
    return "\n".join(lines)


async def run_simulator(args: argparse.Namespace) -> None:
    """Serve until SIGTERM/SIGINT; print the base URL as the one line on stdout."""
    import signal

    from watcher.simulator.app import RealClock, create_app
    from watcher.simulator.scenario import default_scenario, generate_scenario, load_scenario
    from watcher.simulator.server import serve

    if args.generate:
        scenario = generate_scenario(
            runs=args.generate,
            seed=args.seed,
            long_runs=args.long_runs,
            long_run_steps=args.long_run_steps,
            long_run_done=args.long_run_done,
            duration=args.duration,
        )
    elif args.scenario:
        scenario = load_scenario(args.scenario)
    else:
        scenario = default_scenario()
    limit = None
    if args.rate_limit is not None:
        from watcher.simulator.limiter import TokenBucket

        limit = TokenBucket(args.rate_limit)
    first = scenario
    if args.loop:
        from watcher.simulator.loop import looped

        scenario = looped(scenario)
    app = create_app(scenario, clock=RealClock(), api_key=args.api_key, rate_limit=limit)

    def ready(url: str) -> None:
        print(url, flush=True)
        log.info("simulator listening", base_url=url)
        print(banner(first, url, api_key=args.api_key, loop=args.loop), file=sys.stderr, flush=True)

    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: serve(app, port=args.port, on_ready=ready))
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                break
        tg.cancel_scope.cancel()


async def run_demo(json_out: bool, log_level: str | None) -> int:
    """The simulator's default scenario, watched to its end; exit 0 when all runs ended."""
    from watcher.service.daemon import serve as serve_watcher
    from watcher.simulator.app import RealClock, create_app
    from watcher.simulator.scenario import default_scenario
    from watcher.simulator.server import serve

    scenario = default_scenario()
    app = create_app(scenario, clock=RealClock())
    ready = anyio.Event()
    url = ""

    def on_ready(base_url: str) -> None:
        nonlocal url
        url = base_url
        ready.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: serve(app, port=0, on_ready=on_ready))
        with anyio.fail_after(10):
            await ready.wait()
        print(f"runstep-watcher demo: simulated Assistants API at {url}", file=sys.stderr)
        settings = load_settings(
            None,
            {},
            {
                "api.base_url": url,
                "state.path": ":memory:",
                "poll.interval": 0.5,
                "poll.max_interval": 2.0,
                "log.level": log_level or "warning",
            },
        )
        settings = with_watches(
            settings,
            [
                {"thread_id": thread.id, "run_id": run.id}
                for thread in scenario.threads
                for run in thread.runs
            ]
            # beside the runs: the scenario's background responses and batches
            + [{"response_id": r.id} for r in scenario.long_running.responses]
            + [{"batch_id": b.id} for b in scenario.long_running.batches],
        )
        watcher = await serve_watcher(settings, json_out=json_out, exit_when_done=True)
        tg.cancel_scope.cancel()
    # interrupted: 130 / 143, as a shell expects of a command stopped by SIGINT / SIGTERM
    return 0 if watcher.stopped_by is None else 128 + watcher.stopped_by
