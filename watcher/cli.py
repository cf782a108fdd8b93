"""The command line: parse, build one Settings, wire the parts, map outcomes to exit codes.

Exit codes: 0 ok; 1 `watch --exit-status` and the run did not complete; 2 usage;
3 the API key was refused; 4 not found (or no Assistants API at the base URL);
73 the state file cannot be used; 78 bad configuration (EX_CONFIG).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import structlog

from watcher import __version__, logs
from watcher.config import ConfigError, Settings
from watcher.config_file import load_settings, with_watches
from watcher.daemon import Notify, serve
from watcher.ids import is_valid_id
from watcher.simulator.scenario import ScenarioError
from watcher.store import StateError

__all__ = ["main"]

EXIT_OK, EXIT_FAILED_RUN, EXIT_AUTH, EXIT_NOT_FOUND = 0, 1, 3, 4
EXIT_STATE, EXIT_CONFIG = 73, 78

log = structlog.get_logger("watcher.cli")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], help="stderr log level"
    )
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
    p.add_argument("--version", action="version", version=f"runstep-watcher {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", parents=[common, api], help="the daemon")
    run.add_argument("--config", type=Path, required=True, help="TOML config file")
    run.add_argument("--state", help="state file (over [state] path)")

    watch = sub.add_parser(
        "watch", parents=[common, api, view], help="follow one run to its end, then exit"
    )
    watch.add_argument("thread_id")
    watch.add_argument("run_id")
    watch.add_argument("--config", type=Path, help="optional TOML config file")
    watch.add_argument("--exit-status", action="store_true", help="exit 1 unless the run completed")

    check = sub.add_parser("check-config", parents=[common, api], help="validate a config")
    check.add_argument("--config", type=Path, required=True)

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

    outbox = sub.add_parser("outbox", help="webhook deliveries: pending and dead letters")
    outbox_sub = outbox.add_subparsers(dest="outbox_command", required=True, metavar="ACTION")
    lst = outbox_sub.add_parser("list", parents=[common], help="pending and dead events")
    lst.add_argument("--config", type=Path, required=True)
    lst.add_argument("--state", help="state file (over [state] path)")
    replay = outbox_sub.add_parser("replay", parents=[common], help="send dead letters again")
    replay.add_argument("--config", type=Path, required=True)
    replay.add_argument("--state", help="state file (over [state] path)")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("event_id", nargs="?", help="one event id (evt_…)")
    which.add_argument("--all", action="store_true", help="every dead letter")
    which.add_argument(
        "--since", help="dead letters of events created since TIME (ISO 8601 or unix seconds)"
    )

    sub.add_parser(
        "demo", parents=[common, view], help="the simulator and the watcher in one process"
    )
    return p


def _settings(args: argparse.Namespace, **flags: Any) -> Settings:
    flags = {
        "log.level": args.log_level,
        "api.base_url": getattr(args, "base_url", None),
        **flags,
    }
    return load_settings(getattr(args, "config", None), os.environ, flags)


def _secrets(settings: Settings) -> list[str | None]:
    """Every secret the logs must never show: key, webhook secrets, token, proxy password."""
    from urllib.parse import unquote, urlsplit

    api, hook, http = settings.api, settings.webhook, settings.http
    found = [api.api_key.get_secret_value() if api.api_key else None]
    found += [s.get_secret_value() for s in hook.secret] if hook else []
    found += [http.token.get_secret_value()] if http and http.token else []
    password = urlsplit(api.proxy.get_secret_value()).password if api.proxy else None
    found += [password, unquote(password)] if password else []
    return found


def _notifier() -> Notify | None:
    try:
        from watcher.notify import Notifier
    except ImportError:  # pragma: no cover
        return None
    return Notifier.from_env(os.environ, os.getpid())


def _cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args, **{"state.path": args.state})
    logs.configure(settings.log.level, secrets=_secrets(settings))
    if not settings.watch:
        log.warning("no [[watch]] in the config: only watches already in the state file run")

    def reloader() -> Settings:
        return _settings(args, **{"state.path": args.state})

    anyio.run(partial(serve, settings, json_out=True, reloader=reloader, notify=_notifier()))
    return EXIT_OK


def _cmd_watch(args: argparse.Namespace) -> int:
    settings = _settings(args, **{"state.path": ":memory:"})
    settings = with_watches(settings, [{"thread_id": args.thread_id, "run_id": args.run_id}])
    logs.configure(settings.log.level, secrets=_secrets(settings))
    json_out = args.json or not sys.stdout.isatty()
    watcher = anyio.run(
        partial(serve, settings, json_out=json_out, exit_when_done=True, stop_on_error=True)
    )
    outcome = watcher.outcomes.get((args.thread_id, args.run_id))
    if outcome is None:
        return EXIT_OK  # stopped by a signal before the run ended
    if outcome.error:
        print(f"runstep-watcher: {outcome.error}", file=sys.stderr)
        return outcome.exit_code
    return outcome.exit_code if args.exit_status else EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    import json

    settings = _settings(args)
    print(json.dumps(settings.masked(), indent=2))
    return EXIT_OK


def _cmd_simulate(args: argparse.Namespace) -> int:
    from watcher.demo import run_simulator

    logs.configure(args.log_level or "info")
    anyio.run(run_simulator, args)
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from watcher.demo import run_demo

    logs.configure(args.log_level or "warning")
    json_out = args.json or not sys.stdout.isatty()
    return anyio.run(run_demo, json_out, args.log_level)


def _parse_time(value: str) -> float:
    from datetime import UTC, datetime

    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"--since: {value!r} is not an ISO 8601 time or unix seconds") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _cmd_outbox(args: argparse.Namespace) -> int:
    import time

    from watcher.store import Store
    from watcher.webhook import SINK

    settings = load_settings(args.config, os.environ, {"state.path": args.state}, require_key=False)
    store = Store(settings.state.path)
    try:
        if args.outbox_command == "list":
            items = store.outbox(SINK)
            print(f"{'state':8} {'attempts':>8}  {'event id':38} {'type':32} {'run':24} last error")
            for it in items:
                print(
                    f"{it.state:8} {it.attempts:>8}  {it.event_id:38} {it.type:32} "
                    f"{it.run_id:24} {it.last_error or ''}"
                )
            depth = store.queue_depth(SINK)
            print(f"{depth['pending']} pending, {depth['dead']} dead", file=sys.stderr)
            return EXIT_OK
        if args.event_id is not None and not is_valid_id(args.event_id):
            raise ConfigError(f"event_id: {args.event_id!r} is not a valid event id")
        max_age = settings.webhook.max_age if settings.webhook else 259200.0
        count = store.replay(
            SINK,
            deadline=time.time() + max_age,
            event_id=args.event_id,
            since=_parse_time(args.since) if args.since else None,
        )
        print(f"{count} dead letter(s) queued again", file=sys.stderr)
        return EXIT_OK if count or args.all or args.since else EXIT_NOT_FOUND
    finally:
        store.close()


COMMANDS = {
    "outbox": _cmd_outbox,
    "run": _cmd_run,
    "watch": _cmd_watch,
    "check-config": _cmd_check,
    "simulate": _cmd_simulate,
    "demo": _cmd_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"runstep-watcher: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except ScenarioError as exc:
        print(f"runstep-watcher: scenario error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except StateError as exc:
        print(f"runstep-watcher: state error: {exc}", file=sys.stderr)
        return EXIT_STATE
    except KeyboardInterrupt:
        return 130
