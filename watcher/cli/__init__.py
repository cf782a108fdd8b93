"""The command line: `runstep-watcher` and `python -m watcher` call `main`."""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line (imported lazily: `watcher.cli.options` stays light)."""
    from watcher.cli.main import main as run

    return run(argv)
