"""The command line: parse, build one Settings, wire the parts, map outcomes to exit codes.

Exit codes: 0 ok; 1 `watch --exit-status` and the run did not complete; 2 usage;
3 the API key was refused; 4 not found (the run, no Assistants API at the base URL, or the
dead letter `outbox replay ID` names); 73 the state file (or the `[state] url` database)
cannot be used; 75 the [http] listen port is in use (EX_TEMPFAIL); 78 bad configuration
(EX_CONFIG); 124 `watch --timeout` ran out; 130 / 143 `watch` interrupted by SIGINT /
SIGTERM.
"""

from __future__ import annotations

import argparse
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
from watcher.cli.options import EXIT_TIMEOUT, interrupted_exit_code
from watcher.cli.parser import CONFIG_ENV, build_parser
from watcher.config.config_file import load_settings, with_watches
from watcher.config.settings import ConfigError, Settings
from watcher.core.textsafe import visible
from watcher.service.daemon import Notify, serve
from watcher.service.listen import ListenError
from watcher.sources.keys import describe
from watcher.state.statefile import hold_lock
from watcher.state.store import StateError
from watcher.watching.app import Watcher
from watcher.watching.watch_target import TargetError, watch_entry

__all__ = ["main"]

EXIT_OK, EXIT_FAILED_RUN, EXIT_AUTH, EXIT_NOT_FOUND = 0, 1, 3, 4
EXIT_USAGE, EXIT_STATE, EXIT_TEMPFAIL, EXIT_CONFIG = 2, 73, 75, 78

log = structlog.get_logger("watcher.cli")


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
        entry = watch_entry(args.ids, kind=args.kind, parent=args.parent)
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


def _cmd_status(args: argparse.Namespace) -> int:
    from watcher.cli.status import run_status

    path = _config_path(args)
    settings = load_settings(path, os.environ, {"state.path": args.state}, require_key=False)
    return run_status(settings.state, as_json=args.json)


COMMANDS = {
    "outbox": _cmd_outbox,
    "run": _cmd_run,
    "watch": _cmd_watch,
    "check-config": _cmd_check,
    "simulate": _cmd_simulate,
    "demo": _cmd_demo,
    "status": _cmd_status,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
