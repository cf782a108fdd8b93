"""The live terminal view of `watch` and `demo` (rich), fed by every poll's objects."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from watcher.textsafe import markup, visible
from watcher.transitions import Observed

__all__ = ["LiveView"]

_STYLE = {
    "completed": "green",
    "failed": "red",
    "cancelled": "yellow",
    "expired": "yellow",
    "incomplete": "yellow",
    "requires_action": "magenta",
    "in_progress": "cyan",
    "queued": "dim",
}


def _describe_step(data: dict[str, Any]) -> str:
    details = data.get("step_details")
    if isinstance(details, dict) and details.get("type") == "tool_calls":
        names = []
        for call in details.get("tool_calls") or []:
            if isinstance(call, dict):
                fn = call.get("function")
                name = fn.get("name") if isinstance(fn, dict) else None
                names.append(str(name or call.get("type", "?")))
        return "tool_calls: " + ", ".join(names) if names else "tool_calls"
    return str(data.get("type", "?"))


def _elapsed(data: dict[str, Any], now: float) -> str:
    start = data.get("started_at") or data.get("created_at")
    end = next(
        (
            data.get(k)
            for k in ("completed_at", "failed_at", "cancelled_at", "expired_at")
            if data.get(k)
        ),
        None,
    )
    if not isinstance(start, int | float):
        return ""
    seconds = (end if isinstance(end, int | float) else now) - start
    return f"{max(0.0, seconds):.0f}s"


def _tokens(data: dict[str, Any]) -> str:
    usage = data.get("usage")
    if isinstance(usage, dict) and isinstance(usage.get("total_tokens"), int):
        return str(usage["total_tokens"])
    return ""


@dataclass
class _Run:
    data: dict[str, Any]
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)


class LiveView:
    """Keeps the latest object of every run and step seen; redraws on each batch."""

    def __init__(self, console: Console, *, wall: Callable[[], float] = time.time) -> None:
        self.console = console
        self.wall = wall
        self.runs: dict[str, _Run] = {}
        self._live = Live(console=console, auto_refresh=False, transient=False)

    def __enter__(self) -> LiveView:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.update(self.render(), refresh=True)
        self._live.__exit__(None, None, None)

    def on_observed(self, objects: Sequence[Observed]) -> None:
        """The latest of each object, from every poll: a status seen before still shows."""
        for obj in objects:
            if obj.kind == "thread.run":
                self.runs.setdefault(obj.run_id, _Run(obj.data)).data = obj.data
            else:
                run = self.runs.setdefault(obj.run_id, _Run({"id": obj.run_id}))
                run.steps[obj.object_id] = obj.data
        if objects:
            self._live.update(self.render(), refresh=True)

    def render(self) -> RenderableType:
        now = self.wall()
        parts: list[RenderableType] = []
        for run_id, run in self.runs.items():
            status = str(run.data.get("status", "?"))
            title = Text.assemble(
                (f"{visible(run_id)} ", "bold"),
                (visible(status), _STYLE.get(status, "")),
                f"  {_elapsed(run.data, now)}  tokens {_tokens(run.data) or '-'}",
            )
            table = Table(title=title, title_justify="left", expand=False, box=None)
            for col in ("step", "type / tools", "status", "elapsed", "tokens"):
                table.add_column(col)
            for step_id, step in run.steps.items():
                st = str(step.get("status", "?"))
                table.add_row(
                    markup(step_id),
                    markup(_describe_step(step)),
                    Text(visible(st), _STYLE.get(st, "")),
                    _elapsed(step, now),
                    _tokens(step),
                )
            parts.append(table)
        return Group(*parts)
