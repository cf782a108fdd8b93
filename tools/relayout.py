"""Move watcher/'s flat modules into folders for the layers (issue 11); run once from the repo root.

git mv each module, then rewrite every dotted `watcher.X` and path `watcher/X.py` in the code,
tests, bench, docs, README and pyproject.toml. A name followed by `(` is a call on a variable
named `watcher` (e.g. `watcher.health()`), not a module, and is left alone, as is
`watcher.poller.x` in a file that does not `import watcher.poller`; so are logger names
(`get_logger("watcher.app")`) and the console script `watcher.cli:main`.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

GROUPS: dict[str, list[str]] = {
    "core": [
        "transitions",
        "events",
        "cadence",
        "pacing",
        "rate_headers",
        "ids",
        "clock",
        "errors",
        "textsafe",
        "urls",
        "scrub",
        "watch_keys",
        "webhook_health",
        "webhook_openai",
    ],
    "state": [
        "store",
        "store_base",
        "store_events",
        "store_outbox",
        "store_pg",
        "store_pg_adapter",
        "store_pg_base",
        "store_pg_events",
        "store_pg_leases",
        "store_pg_outbox",
        "store_pg_watches",
        "store_protocol",
        "store_records",
        "store_watches",
        "astore",
        "migrations",
        "migrations_pg",
        "retention",
        "outbox_schema",
        "statefile",
        "reconcile",
        "state_backend",
    ],
    "delivery": ["sinks", "webhook", "recorder"],
    "service": [
        "daemon",
        "notify",
        "http_api",
        "http_guards",
        "http_watches",
        "asgi",
        "listen",
        "connlimits",
        "metrics",
        "housekeeping",
        "logs",
    ],
    "api": ["client", "bodies", "paging", "ratelimit", "retry"],
    "watching": [
        "app",
        "registry",
        "poller",
        "health",
        "watch_state",
        "pace_report",
        "scheduler",
        "live",
        "live_objects",
        "watch_target",
    ],
}
RENAMED = {
    "cli": "cli.main",
    "cli_options": "cli.options",
    "demo": "cli.demo",
    "config": "config.settings",
    "config_file": "config.config_file",
    "reloadable": "config.reloadable",
}
MOVES = {name: f"{group}.{name}" for group, names in GROUPS.items() for name in names} | RENAMED
DOCSTRINGS = {
    "core": "The pure core: transitions, events, pacing, keys and text helpers; no I/O.",
    "state": "The state: the store's interface, its SQLite and PostgreSQL backends, migrations.",
    "delivery": "Delivery: the sinks events go to (stdout, the signed webhook) and the recorder.",
    "service": "The service around the watcher: daemon, HTTP API, notify, metrics, logs.",
    "api": "The HTTP client of the OpenAI-style API: paging, rate limits, retries, bodies.",
    "watching": "The watcher: its registry of watches, the poller, the scheduler, health.",
    "config": "The configuration: its model, the file + environment + flags loader, reloads.",
}
CLI_INIT = '''"""The command line: `runstep-watcher` and `python -m watcher` call `main`."""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line (imported lazily: `watcher.cli.options` stays light)."""
    from watcher.cli.main import main as run

    return run(argv)
'''
NAMES = "|".join(sorted(MOVES, key=len, reverse=True))
DOTTED = re.compile(rf"(?<!get_logger\(\")(?<![\w.\-/])watcher\.({NAMES})(?![\w(])")
PATH = re.compile(rf"(?<![\w.\-/])watcher/({NAMES})\.py\b")
FROM_PKG = re.compile(rf"^from watcher import ({NAMES})$", re.M)


def module(match: re.Match[str], text: str) -> bool:
    """Whether `watcher.X.attr` names the module X, not an attribute of a variable `watcher`."""
    if not text.startswith(".", match.end()):
        return True
    return re.search(rf"^\s*import watcher\.{match[1]}\b", text, re.M) is not None


def rewrite(text: str) -> str:
    if "watcher.cli:main" in text:  # the console script: `watcher.cli` (a package now) has `main`
        return rewrite(text.replace("watcher.cli:main", "\0")).replace("\0", "watcher.cli:main")
    text = FROM_PKG.sub(lambda m: f"import watcher.{MOVES[m[1]]} as {m[1]}", text)
    text = DOTTED.sub(lambda m: f"watcher.{MOVES[m[1]]}" if module(m, text) else m[0], text)
    return PATH.sub(lambda m: f"watcher/{MOVES[m[1]].replace('.', '/')}.py", text)


def main() -> int:
    root = Path("watcher")
    for package in {target.split(".")[0] for target in MOVES.values()}:
        (root / package).mkdir(exist_ok=True)
    for name, target in sorted(MOVES.items()):
        dest = root / (target.replace(".", "/") + ".py")
        subprocess.run(["git", "mv", str(root / f"{name}.py"), str(dest)], check=True)
    for package, doc in DOCSTRINGS.items():
        (root / package / "__init__.py").write_text(f'"""{doc}"""\n')
    (root / "cli" / "__init__.py").write_text(CLI_INIT)
    files = subprocess.run(["git", "ls-files"], check=True, capture_output=True, text=True)
    for line in files.stdout.splitlines():
        path = Path(line)
        if path.suffix not in {".py", ".md", ".toml", ".cfg", ".ini", ".txt", ".yml", ".yaml"}:
            continue
        if path.parts[0] == "tools" or path.name == "CHANGELOG.md":
            continue
        old = path.read_text("utf-8")
        new = rewrite(old)
        if new != old:
            path.write_text(new, "utf-8")
    subprocess.run(["ruff", "check", "--fix", "--select", "I", "--quiet", "."], check=True)
    subprocess.run(["ruff", "format", "--quiet", "watcher", "tests", "bench"], check=True)
    subprocess.run(["git", "add", "watcher"], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
