"""The live terminal view of `watch` and `demo` (rich), fed by every poll's objects.

It fits the terminal: when the runs have more steps than it has rows, each run shows its
active and latest steps under a "… N earlier steps" line. Log lines written to stderr
while it is up print above it, through the same console (rich's stderr redirect).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from watcher.core.textsafe import markup, visible
from watcher.core.transitions import Observed
from watcher.sources.assistants import ASSISTANTS, RUN, STEP, is_terminal
from watcher.watching.live_objects import objects_table

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

    def __init__(
        self,
        console: Console,
        *,
        wall: Callable[[], float] = time.time,
        redirect_stderr: bool = True,
    ) -> None:
        """`redirect_stderr`: stderr is the same terminal, so log lines go above the view."""
        self.console = console
        self.wall = wall
        self.runs: dict[str, _Run] = {}
        self.objects: dict[str, dict[str, Any]] = {}  # other sources' objects, by id
        self._live = Live(
            console=console,
            auto_refresh=False,
            transient=False,
            redirect_stderr=redirect_stderr,
        )

    def __enter__(self) -> LiveView:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.update(self.render(), refresh=True)
        self._live.__exit__(None, None, None)

    def on_observed(self, objects: Sequence[Observed]) -> None:
        """The latest of each object, from every poll: a status seen before still shows."""
        for obj in objects:
            if obj.kind not in ASSISTANTS.kinds:  # a response, batch, job, file batch
                self.objects[obj.object_id] = obj.data
            elif obj.kind == RUN:
                self.runs.setdefault(obj.watch, _Run(obj.data)).data = obj.data
            else:
                run = self.runs.setdefault(obj.watch, _Run({"id": obj.watch}))
                run.steps[obj.object_id] = obj.data
        if objects:
            self._live.update(self.render(), refresh=True)

    def _step_budget(self) -> int | None:
        """How many steps each run may show so that the view fits the rows; None: all."""
        rows = self.console.size.height
        if sum(2 + len(r.steps) for r in self.runs.values()) < rows:  # title, header, steps
            return None
        runs = len(self.runs)
        return max(1, (rows - 1 - 3 * runs) // runs)  # each also gets a "… N earlier" line

    def render(self) -> RenderableType:
        now = self.wall()
        budget = self._step_budget()
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
            hidden, shown = _pick_steps(run.steps, budget)
            if hidden:
                table.add_row(Text(f"… {hidden} earlier step{'s' if hidden > 1 else ''}", "dim"))
            for step_id, step in shown:
                table.add_row(*_step_cells(step_id, step, now))
            parts.append(table)
        if self.objects:
            parts.append(objects_table(self.objects, now))
        return Group(*parts)


def _step_cells(step_id: str, step: dict[str, Any], now: float) -> list[RenderableType]:
    """One step's row: id, type / tools, status, elapsed, tokens."""
    st = str(step.get("status", "?"))
    return [
        markup(step_id),
        markup(_describe_step(step)),
        Text(visible(st), _STYLE.get(st, "")),
        _elapsed(step, now),
        _tokens(step),
    ]


def _pick_steps(
    steps: dict[str, dict[str, Any]], budget: int | None
) -> tuple[int, list[tuple[str, dict[str, Any]]]]:
    """(how many are left out, the steps shown in order): the active ones, then the latest."""
    items = list(steps.items())
    if budget is None or len(items) <= budget:
        return 0, items
    active = [sid for sid, st in items if not is_terminal(STEP, str(st.get("status")))]
    keep = set(active[-budget:])
    for sid, _ in reversed(items):
        if len(keep) >= budget:
            break
        keep.add(sid)
    return len(items) - len(keep), [(sid, st) for sid, st in items if sid in keep]
