"""`runstep-watcher outbox list | replay | purge`: the webhook outbox of a state file.

Short commands beside a running daemon: they take no lock (SQLite serialises the writes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from watcher.config.settings import ConfigError, Settings
from watcher.core.textsafe import visible
from watcher.delivery.webhook import SINK
from watcher.state.store import Store

__all__ = ["run_outbox"]

EXIT_OK, EXIT_NOT_FOUND = 0, 4  # as in the README's table

_OUTBOX_FIELDS = (
    "event_id",
    "state",
    "attempts",
    "type",
    "thread_id",
    "run_id",
    "created_at",
    "next_attempt_at",
    "deadline",
    "last_error",
)


def run_outbox(args: argparse.Namespace, settings: Settings) -> int:
    """`outbox list | replay | purge` on the state file `settings` names."""
    if settings.state.url is not None:  # not the default file beside it, silently
        raise ConfigError("state.url: `outbox` reads a SQLite state file only (--state FILE)")
    if str(settings.state.path) != ":memory:" and not Path(settings.state.path).exists():
        return _no_state_file(args, settings.state.path)
    store = Store(settings.state.path)
    try:
        if args.outbox_command == "list":
            items = store.outbox(SINK)
            if args.json:
                for it in items:
                    print(json.dumps({k: getattr(it, k) for k in _OUTBOX_FIELDS}))
                return EXIT_OK
            print(f"{'state':8} {'attempts':>8}  {'event id':38} {'type':32} {'run':24} last error")
            for it in items:  # API and receiver text: control characters made visible
                print(
                    f"{it.state:8} {it.attempts:>8}  {visible(it.event_id):38} "
                    f"{visible(it.type):32} {visible(it.run_id):24} {visible(it.last_error or '')}"
                )
            depth = store.queue_depth(SINK)
            print(f"{depth['pending']} pending, {depth['dead']} dead", file=sys.stderr)
            return EXIT_OK
        if args.outbox_command == "purge":
            count = store.purge(SINK, before=args.before)
            print(f"{count} dead letter(s) purged", file=sys.stderr)
            return EXIT_OK
        max_age = settings.webhook.max_age if settings.webhook else 259200.0
        count = store.replay(
            SINK,
            deadline=time.time() + max_age,
            event_id=args.event_id,
            since=args.since,
        )
        if args.event_id is not None and not count:
            state = next((i.state for i in store.outbox(SINK) if i.event_id == args.event_id), None)
            why = "not in the outbox" if state is None else f"{state}, not a dead letter"
            print(f"runstep-watcher: {args.event_id}: {why}", file=sys.stderr)
            return EXIT_NOT_FOUND
        print(f"{count} dead letter(s) queued again", file=sys.stderr)
        return EXIT_OK
    finally:
        store.close()


def _no_state_file(args: argparse.Namespace, path: Path | str) -> int:
    """Asked, not created (as `status`): no state file is an empty outbox."""
    print(f"runstep-watcher: no state file at {path}: the outbox is empty", file=sys.stderr)
    if args.outbox_command == "replay" and args.event_id is not None:
        print(f"runstep-watcher: {args.event_id}: not in the outbox", file=sys.stderr)
        return EXIT_NOT_FOUND
    return EXIT_OK
