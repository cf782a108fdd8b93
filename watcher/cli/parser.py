"""The command line's grammar: every command, its arguments and their types (`main` runs
them). `--log-level`, `--log-format` and `--version` come from `options`, before or after
the command's name."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from watcher.cli.options import add_global_options, duration, event_id, since_time
from watcher.watching.watch_target import KINDS, UNDER

__all__ = ["CONFIG_ENV", "build_parser"]

CONFIG_ENV = "RUNSTEP_WATCHER_CONFIG"  # the config file when --config is not given


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    add_global_options(common)
    api = argparse.ArgumentParser(add_help=False)
    api.add_argument("--base-url", help="API base URL (over $OPENAI_BASE_URL and the file)")
    view = argparse.ArgumentParser(add_help=False)
    view.add_argument(
        "--json", action="store_true", help="JSON event lines even when stdout is a terminal"
    )

    p = argparse.ArgumentParser(
        prog="runstep-watcher",
        description="Watch Assistants runs and run steps; emit every status transition.",
    )
    add_global_options(p)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", parents=[common, api], help="the daemon")
    run.add_argument("--config", type=Path, help=f"TOML config file (else ${CONFIG_ENV})")
    run.add_argument("--state", help="state file (over [state] path)")

    watch = sub.add_parser(
        "watch", parents=[common, api, view], help="follow one run or object to its end, then exit"
    )
    watch.add_argument(
        "ids", nargs="+", metavar="ID", help="THREAD_ID RUN_ID, or resp_… batch_… ftjob-… vsfb_…"
    )
    watch.add_argument("--kind", choices=KINDS, help="what ID is, where its prefix does not say")
    for flag, under in UNDER.items():  # a file batch's --vector-store
        assert under.parent is not None
        text = f"a {under.label}'s {under.parent.name}"
        watch.add_argument(flag, dest="parent", metavar=under.parent.metavar, help=text)
    watch.add_argument("--config", type=Path, help=f"optional TOML config file (or ${CONFIG_ENV})")
    watch.add_argument("--exit-status", action="store_true", help="exit 1 unless the run completed")
    watch.add_argument(
        "--timeout",
        type=duration,
        metavar="DURATION",
        help="give up (exit 124) when the run has not ended after DURATION (90, 90s, 5m, 2h)",
    )

    check = sub.add_parser("check-config", parents=[common, api], help="validate a config")
    check.add_argument("--config", type=Path, help=f"TOML config file (else ${CONFIG_ENV})")
    check.add_argument(
        "--credentials-dir",
        type=Path,
        metavar="DIR",
        help="read secrets from DIR as systemd's $CREDENTIALS_DIRECTORY (openai-api-key, …)",
    )

    sim = sub.add_parser("simulate", parents=[common], help="serve a simulated Assistants API")
    sim.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    sim.add_argument("--scenario", type=Path, help="JSON scenario file (default: built-in)")
    sim.add_argument("--generate", type=int, metavar="RUNS", help="generate RUNS random runs")
    sim.add_argument("--seed", type=int, default=1, help="seed for --generate")
    sim.add_argument("--long-runs", type=int, default=0, help="with --generate: long runs")
    sim.add_argument("--long-run-steps", type=int, default=320, help="steps of each long run")
    sim.add_argument(
        "--long-run-done", type=int, default=0, help="steps of a long run completed at start"
    )
    sim.add_argument("--duration", type=float, default=30.0, help="with --generate: seconds")
    sim.add_argument("--api-key", help="require this (fake) key")
    sim.add_argument(
        "--rate-limit",
        type=_positive,
        metavar="RPS",
        help="allow RPS requests/s (token bucket; 429 with retry-after-ms and x-ratelimit-*)",
    )
    sim.add_argument(
        "--loop", action="store_true", help="keep the built-in scenario going: new runs start"
    )

    outbox = sub.add_parser(
        "outbox", parents=[common], help="webhook deliveries: pending and dead letters"
    )
    outbox_sub = outbox.add_subparsers(dest="outbox_command", required=True, metavar="ACTION")
    lst = outbox_sub.add_parser("list", parents=[common], help="pending and dead events")
    lst.add_argument("--config", type=Path, help=f"TOML config file (else ${CONFIG_ENV})")
    lst.add_argument("--state", help="state file (over [state] path)")
    lst.add_argument("--json", action="store_true", help="one JSON object per line")
    replay = outbox_sub.add_parser("replay", parents=[common], help="send dead letters again")
    replay.add_argument("--config", type=Path, help=f"TOML config file (else ${CONFIG_ENV})")
    replay.add_argument("--state", help="state file (over [state] path)")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("event_id", nargs="?", type=event_id, help="one event id (evt_…)")
    which.add_argument("--all", action="store_true", help="every dead letter")
    which.add_argument(
        "--since",
        type=since_time,
        metavar="TIME",
        help="dead letters of events created since TIME (ISO 8601, UTC unless it says; or unix s)",
    )
    purge = outbox_sub.add_parser("purge", parents=[common], help="drop dead letters")
    purge.add_argument("--config", type=Path, help=f"TOML config file (else ${CONFIG_ENV})")
    purge.add_argument("--state", help="state file (over [state] path)")
    purge.add_argument(
        "--before",
        type=since_time,
        metavar="TIME",
        help="only those of events created before TIME (ISO 8601, UTC unless it says; or unix s)",
    )

    status = sub.add_parser(
        "status", parents=[common], help="who holds what: replicas, their watches and leases"
    )
    status.add_argument("--config", type=Path, help=f"TOML config file (else ${CONFIG_ENV})")
    status.add_argument("--state", help="state file (over [state] path)")
    status.add_argument("--json", action="store_true", help="one JSON document")

    sub.add_parser(
        "demo", parents=[common, view], help="the simulator and the watcher in one process"
    )
    return p


def _positive(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {raw!r}")
    return value
