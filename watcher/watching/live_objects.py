"""The live view's table of long-running objects (responses, batches, fine-tuning jobs,
file batches): one row each, its status and what says how far it got — a batch's
`request_counts` as a progress bar, a job's `estimated_finish`, a file batch's
`file_counts`, a response's tokens. Pure rendering: no I/O."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from rich.table import Table
from rich.text import Text

from watcher.core.textsafe import visible

__all__ = ["objects_table", "progress"]

_STYLE = {
    "completed": "green",
    "succeeded": "green",
    "failed": "red",
    "expired": "yellow",
    "cancelled": "yellow",
    "cancelling": "yellow",
    "incomplete": "yellow",
    "in_progress": "cyan",
    "running": "cyan",
    "finalizing": "cyan",
}
_NAMES = {
    "response": "response",
    "batch": "batch",
    "fine_tuning.job": "fine-tuning job",
    "vector_store.files_batch": "file batch",
    "vector_store.file_batch": "file batch",  # as the spec's example names it
}
_FILE_BATCH = ("vector_store.files_batch", "vector_store.file_batch")
BAR = 20


def progress(done: int, failed: int, total: int) -> Text:
    """`██████░░░░ 120/250 (4 failed)`: done and failed of total."""
    if total <= 0:
        return Text("-", "dim")
    filled = min(BAR, round(BAR * (done + failed) / total))
    bar = Text("█" * filled, "green") + Text("░" * (BAR - filled), "dim")
    tail = f" {done + failed}/{total}" + (f" ({failed} failed)" if failed else "")
    return bar + Text(tail)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _detail(data: Mapping[str, Any], now: float) -> Text:
    kind = data.get("object")
    if kind == "batch" and isinstance(counts := data.get("request_counts"), dict):
        return progress(
            _int(counts.get("completed")), _int(counts.get("failed")), _int(counts.get("total"))
        )
    if kind in _FILE_BATCH and isinstance(counts := data.get("file_counts"), dict):
        done = _int(counts.get("completed")) + _int(counts.get("cancelled"))
        return progress(done, _int(counts.get("failed")), _int(counts.get("total")))
    if kind == "fine_tuning.job":
        finish = data.get("estimated_finish")
        if isinstance(finish, int | float) and finish > 0:
            left = max(0.0, finish - now)
            at = time.strftime("%H:%M:%S", time.gmtime(finish))
            return Text(f"estimated finish {at} UTC (in {left:.0f}s)")
        model = data.get("fine_tuned_model")
        return Text(f"model {visible(str(model))}" if model else "")
    usage = data.get("usage")
    if isinstance(usage, dict) and _int(usage.get("output_tokens")):
        return Text(
            f"tokens in {_int(usage.get('input_tokens'))} out {_int(usage['output_tokens'])}"
        )
    return Text("")


def objects_table(objects: Mapping[str, Mapping[str, Any]], now: float) -> Table:
    """One row per object, in the order first seen."""
    table = Table(title=Text("objects", "bold"), title_justify="left", box=None)
    for col in ("object", "kind", "status", "progress"):
        table.add_column(col)
    for object_id, data in objects.items():
        status = str(data.get("status", "?"))
        kind = _NAMES.get(str(data.get("object")), str(data.get("object", "?")))
        table.add_row(
            Text(visible(object_id), "bold"),
            visible(kind),
            Text(visible(status), _STYLE.get(status, "")),
            _detail(data, now),
        )
    return table
