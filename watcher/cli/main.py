"""The command line: parse, build one Settings, wire the parts, map outcomes to exit codes.

Exit codes: 0 ok; 1 `watch --exit-status` and the run did not complete; 2 usage;
3 the API key was refused; 4 not found (the run, no Assistants API at the base URL, or the
dead letter `outbox replay ID` names); 73 the state file cannot be used; 75 the [http]
listen port is in use (EX_TEMPFAIL); 78 bad configuration (EX_CONFIG); 124 `watch
--timeout` ran out; 130 / 143 `watch` interrupted by SIGINT / SIGTERM.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import structlog

import watcher.service.logs as logs
from watcher.cli.options import (
    EXIT_TIMEOUT,
    add_global_options,
    duration,
    event_id,
    interrupted_exit_code,
    since_time,
)
from watcher.config.config_file import load_settings, with_watches
from watcher.config.settings import ConfigError, Settings
from watcher.core.textsafe import visible
from watcher.core.watch_keys import describe
from watcher.service.daemon import Notify, serve
from watcher.service.listen import ListenError
from watcher.state.statefile import hold_lock
from watcher.state.store import StateError
from watcher.watching.app import Watcher
from watcher.watching.watch_target import KINDS, TargetError, watch_entry

__all__ = ["main"]

EXIT_OK, EXIT_FAILED_RUN, EXIT_AUTH, EXIT_NOT_FOUND = 0, 1, 3, 4
EXIT_USAGE, EXIT_STATE, EXIT_TEMPFAIL, EXIT_CONFIG = 2, 73, 75, 78
CONFIG_ENV = "RUNSTEP_WATCHER_CONFIG"  # the config file when --config is not given

log = structlog.get_logger("watcher.cli")


def _parser() -> argparse.ArgumentParser:
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
    watch.add_argument("--vector-store", metavar="VS_ID", help="a file batch's vector store")
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


class UsageError(Exception):
    """A command line that cannot work: exit 2 with one line."""


def _config_path(args: argparse.Namespace, *, required: bool = True) -> Path | None:
    path: Path | None = getattr(args, "config", None)
    if path is None and os.environ.get(CONFIG_ENV):
        path = Path(os.environ[CONFIG_ENV])
    if path is None and required:
        raise UsageError(f"{args.command}: --config FILE (or ${CONFIG_ENV}) is required")
    return path


def _settings(
    args: argparse.Namespace, env: dict[str, str] | None = None, /, **flags: Any
) -> Settings:
    flags = {
        "log.level": args.log_level,
        "api.base_url": getattr(args, "base_url", None),
        **flags,
    }
    path = _config_path(args, required=args.command != "watch")
    return load_settings(path, os.environ if env is None else env, flags)


def _configure_logs(
    args: argparse.Namespace, level: str, secrets: list[str | None] | None = None
) -> None:
    journal = logs.is_journal_stream(os.environ.get("JOURNAL_STREAM"), sys.stderr)
    logs.configure(level, secrets=secrets or (), fmt=args.log_format, priority_prefix=journal)


def _secrets(settings: Settings) -> list[str | None]:
    """Every secret the logs must never show: key, webhook secrets, token, proxy password."""
    from urllib.parse import unquote, urlsplit

    api, hook, http = settings.api, settings.webhook, settings.http
    found = [api.api_key.get_secret_value() if api.api_key else None]
    found += [s.get_secret_value() for s in hook.secret] if hook else []
    found += [http.token.get_secret_value()] if http and http.token else []
    pg = settings.state.password
    found += [pg.get_secret_value()] if pg else []
    password = urlsplit(api.proxy.get_secret_value()).password if api.proxy else None
    found += [password, unquote(password)] if password else []
    return found


def _notifier() -> Notify | None:
    try:
        from watcher.service.notify import Notifier
    except ImportError:  # pragma: no cover
        return None
    return Notifier.from_env(os.environ, os.getpid())


def _cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args, **{"state.path": args.state})
    _configure_logs(args, settings.log.level, _secrets(settings))
    if settings.state.url is None:  # replicas share a database; a file has one daemon
        hold_lock(settings.state.path)  # one daemon per state file, for the process's life
    if not settings.watch:
        log.warning("no [[watch]] in the config: only watches already in the state file run")

    def reloader() -> Settings:
        return _settings(args, **{"state.path": args.state})

    anyio.run(partial(serve, settings, json_out=True, reloader=reloader, notify=_notifier()))
    return EXIT_OK


def _cmd_watch(args: argparse.Namespace) -> int:
    settings = _settings(args, **{"state.path": ":memory:"})
    try:
        entry = watch_entry(args.ids, kind=args.kind, vector_store=args.vector_store)
    except TargetError as exc:
        raise UsageError(str(exc)) from None
    settings = with_watches(settings, [entry])
    scope, object_id = settings.watch[0].key
    key = (scope, object_id or "")
    what = f"run {object_id}" if "thread_id" in entry else describe(*key)
    _configure_logs(args, settings.log.level, _secrets(settings))
    json_out = args.json or not sys.stdout.isatty()

    async def until_done_or_timeout() -> Watcher | None:
        with anyio.move_on_after(args.timeout):
            return await serve(settings, json_out=json_out, exit_when_done=True, stop_on_error=True)
        return None

    watcher = anyio.run(until_done_or_timeout)
    if watcher is None:
        print(
            f"runstep-watcher: --timeout {args.timeout:g}s ran out before {what} ended",
            file=sys.stderr,
        )
        return EXIT_TIMEOUT
    outcome = watcher.outcomes.get(key)
    if outcome is None:  # stopped by a signal before the run ended: not "completed"
        return interrupted_exit_code(watcher.stopped_by or signal.SIGINT)
    if outcome.error:
        print(f"runstep-watcher: {visible(outcome.error)}", file=sys.stderr)  # API text
        return outcome.exit_code
    return outcome.exit_code if args.exit_status else EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    import json

    env = dict(os.environ)
    if args.credentials_dir is not None:
        if not args.credentials_dir.is_dir():
            raise UsageError(f"--credentials-dir: {str(args.credentials_dir)!r} is no directory")
        env["CREDENTIALS_DIRECTORY"] = str(args.credentials_dir)
    try:
        settings = _settings(args, env)
    except ConfigError as exc:
        if "no API key" in str(exc) and args.credentials_dir is None:
            hint = "; a key passed as a systemd credential: add --credentials-dir DIR"
            raise ConfigError(f"{exc}{hint}") from None
        raise
    print(json.dumps(settings.masked(), indent=2))
    return EXIT_OK


def _cmd_simulate(args: argparse.Namespace) -> int:
    # the simulator is imported by `simulate` and `demo` only, never by the daemon
    from watcher.cli.demo import run_simulator
    from watcher.simulator.scenario import ScenarioError

    _configure_logs(args, args.log_level or "info")
    try:
        anyio.run(run_simulator, args)
    except ScenarioError as exc:
        print(f"runstep-watcher: scenario error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from watcher.cli.demo import run_demo

    _configure_logs(args, args.log_level or "warning")
    json_out = args.json or not sys.stdout.isatty()
    return anyio.run(run_demo, json_out, args.log_level)


def _cmd_outbox(args: argparse.Namespace) -> int:
    from watcher.cli.outbox import run_outbox

    path = _config_path(args)
    settings = load_settings(path, os.environ, {"state.path": args.state}, require_key=False)
    return run_outbox(args, settings)


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
    for name in ("log_level", "log_format"):  # SUPPRESSed unless given, before or after
        setattr(args, name, getattr(args, name, None))
    try:
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"runstep-watcher: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"runstep-watcher: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except StateError as exc:
        print(f"runstep-watcher: state error: {exc}", file=sys.stderr)
        return EXIT_STATE
    except ListenError as exc:  # in use: another process (an old instance?) holds the port
        print(f"runstep-watcher: cannot listen: {exc}", file=sys.stderr)
        return EXIT_TEMPFAIL if exc.in_use else EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `… | head`: the reader left; no traceback, as a shell tool
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
