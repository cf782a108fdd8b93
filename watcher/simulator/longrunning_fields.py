"""One raw long-running object of a scenario, its fields checked as they are read; each
error names the field (`batches[2].request_counts: must be …`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from watcher.core.ids import is_valid_id

__all__ = ["FieldError", "Fields", "Metadata", "Timeline", "is_count", "is_counts", "is_seconds"]

Timeline = tuple[tuple[str, float], ...]
Metadata = tuple[tuple[str, str], ...]


class FieldError(ValueError):
    """Raised as the scenario's `ScenarioError` by the caller."""


def is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def is_seconds(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and v >= 0


def is_text(v: Any) -> bool:
    return isinstance(v, str) and v != ""


def is_counts(keys: set[str]) -> Callable[[Any], bool]:
    def ok(v: Any) -> bool:
        if not (isinstance(v, dict) and set(v) <= keys and all(map(is_count, v.values()))):
            return False
        return int(v.get("failed", 0)) <= int(v.get("total", 1))

    return ok


def is_metadata(v: Any) -> bool:
    return isinstance(v, dict) and len(v) <= 16 and all(isinstance(x, str) for x in v.values())


class Fields:
    """One raw object's fields, each checked as it is read; errors name `where.key`."""

    def __init__(self, raw: Any, where: str, keys: set[str], seen: set[str]) -> None:
        if not isinstance(raw, dict):
            raise FieldError(f"{where}: must be an object")
        for key in raw:
            if key not in keys:
                raise FieldError(f"{where}.{key}: unknown field")
        value = raw.get("id")
        if not is_valid_id(value) or value in seen:
            raise FieldError(f"{where}.id: must be a plain, unique ID (got {value!r})")
        seen.add(str(value))
        self.raw, self.where, self.id = raw, where, str(value)
        self.timeline = self._timeline(raw.get("timeline"))

    def get(self, key: str, default: Any, ok: Callable[[Any], bool], what: str) -> Any:
        value = self.raw.get(key, default)
        if not ok(value):
            raise FieldError(f"{self.where}.{key}: must be {what}")
        return value

    def text(self, key: str, default: str) -> str:
        return str(self.get(key, default, is_text, "a non-empty string"))

    def metadata(self) -> Metadata:
        value = self.get("metadata", {}, is_metadata, "an object of up to 16 strings")
        return tuple(sorted(value.items()))

    def _timeline(self, raw: Any) -> Timeline:
        where = f"{self.where}.timeline"
        if not isinstance(raw, list) or not raw:
            raise FieldError(f"{where}: must be a non-empty list of [status, seconds]")
        out: list[tuple[str, float]] = []
        for i, entry in enumerate(raw):
            ok = isinstance(entry, list) and len(entry) == 2 and is_text(entry[0])
            if not ok or not is_seconds(entry[1]):
                raise FieldError(f"{where}[{i}]: must be [status, seconds >= 0]")
            if out and entry[1] < out[-1][1]:
                raise FieldError(f"{where}[{i}]: times must not go back")
            out.append((entry[0], float(entry[1])))
        return tuple(out)
