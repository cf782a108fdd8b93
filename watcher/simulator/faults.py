"""Faults injected on demand into the simulator's API answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["KINDS", "Fault", "FaultQueue", "parse_faults"]

KINDS = frozenset({"status", "html", "truncated", "not_json", "delay", "reset", "mangle"})
ROUTES = frozenset({"runs", "run", "steps"})


@dataclass(slots=True)
class Fault:
    kind: str
    count: int = 1
    status: int | None = None
    match: str | None = None
    retry_after: float | None = None
    retry_after_ms: int | None = None
    seconds: float = 1.0


def parse_faults(raw: Any) -> list[Fault]:
    """A JSON list of fault specs; ValueError naming the bad field."""
    if not isinstance(raw, list):
        raise ValueError("faults: must be a list")
    out = []
    for i, spec in enumerate(raw):
        if not isinstance(spec, dict) or spec.get("kind") not in KINDS:
            raise ValueError(f"faults[{i}].kind: must be one of {sorted(KINDS)}")
        if spec.get("match") not in (None, *ROUTES):
            raise ValueError(f"faults[{i}].match: must be one of {sorted(ROUTES)} or null")
        out.append(
            Fault(
                kind=spec["kind"],
                count=int(spec.get("count", 1)),
                status=spec.get("status"),
                match=spec.get("match"),
                retry_after=spec.get("retry_after"),
                retry_after_ms=spec.get("retry_after_ms"),
                seconds=float(spec.get("seconds", 1.0)),
            )
        )
    return out


class FaultQueue:
    """Faults in the order added; each applies to its next `count` matching requests."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self.injected: dict[str, int] = {}

    def add(self, faults: list[Fault]) -> None:
        self._faults.extend(faults)

    def take(self, route: str) -> Fault | None:
        for fault in self._faults:
            if fault.match is None or fault.match == route:
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                self.injected[fault.kind] = self.injected.get(fault.kind, 0) + 1
                return fault
        return None
