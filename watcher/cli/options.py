"""The command line's shared options and argument types: one place, so every command reads
`--log-level`, `--log-format` and `--version` the same before or after its name.

A bad value is a usage error (exit 2, argparse's one line), never a config error.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime

from watcher import __version__
from watcher.core.ids import is_valid_id

__all__ = [
    "EXIT_TIMEOUT",
    "add_global_options",
    "duration",
    "event_id",
    "interrupted_exit_code",
    "since_time",
]

#: `watch --timeout` ran out, as timeout(1) exits
EXIT_TIMEOUT = 124
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def add_global_options(parser: argparse.ArgumentParser) -> None:
    """Options that work before and after the subcommand. SUPPRESS as the default, so a
    subcommand that does not see one keeps what the main parser saw."""
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default=argparse.SUPPRESS,
        help="stderr log level",
    )
    parser.add_argument(
        "--log-format",
        choices=["json", "console"],
        default=argparse.SUPPRESS,
        help="stderr log format (default: console on a terminal, else JSON)",
    )
    parser.add_argument("--version", action="version", version=f"runstep-watcher {__version__}")


def duration(value: str) -> float:
    """Seconds from `30`, `30s`, `1.5m`, `2h` or `1d` (as timeout(1) reads them), > 0."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)\s*", value)
    seconds = float(found[1]) * _UNITS[found[2]] if found else 0.0
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a duration > 0 (e.g. 90, 90s, 5m, 2h)")
    return seconds


def since_time(value: str) -> float:
    """Unix seconds from ISO 8601 (UTC unless it says otherwise) or unix seconds."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an ISO 8601 time or unix seconds"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def event_id(value: str) -> str:
    if not is_valid_id(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a valid event id (evt_…)")
    return value


def interrupted_exit_code(signum: int) -> int:
    """A shell's code for a command stopped by a signal: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + signum
