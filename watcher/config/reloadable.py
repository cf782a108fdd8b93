"""What a reload (SIGHUP) can apply in place, and what waits for the next restart.

Pure: compares two `Settings`. The sections listed in `RESTART_SECTIONS` are built into
long-lived parts (the API connection pool, the HTTP endpoint's socket, the state file, the
webhook client, the sinks, the log renderer); every other section is applied by
`Watcher.reload`. Moving a section from one list to the other is a one-line change here.
"""

from __future__ import annotations

from pydantic import BaseModel

from watcher.config.settings import Settings

__all__ = ["APPLIED_IN_PLACE", "RESTART_SECTIONS", "changed_keys", "restart_needed"]

#: Sections whose changes take effect at the next restart only...
RESTART_SECTIONS: tuple[str, ...] = ("api", "http", "state", "webhook", "stdout", "log")
#: ...except these keys of theirs, which a reload applies (e.g. "http.token").
APPLIED_IN_PLACE: frozenset[str] = frozenset({"http.token"})


def changed_keys(old: BaseModel | None, new: BaseModel | None, prefix: str) -> list[str]:
    """Dotted names of the keys that differ (`poll.interval`); a section added or removed
    as a whole is named alone (`webhook`). Values are never shown: some are secrets."""
    if old is None or new is None:
        return [] if old is new else [prefix]
    fields = type(new).model_fields
    return [f"{prefix}.{name}" for name in fields if getattr(old, name) != getattr(new, name)]


def restart_needed(old: Settings, new: Settings) -> list[str]:
    """The changed keys a reload cannot apply, in file order."""
    out: list[str] = []
    for section in RESTART_SECTIONS:
        out += changed_keys(getattr(old, section), getattr(new, section), section)
    return [key for key in out if key not in APPLIED_IN_PLACE]
