"""`runstep-watcher status`: who holds what, read from the state a config names.

On PostgreSQL (`[state] url`), several replicas share the watches: each replica is listed
with the watches whose lease it holds and when each lease runs out; a watch whose lease is
free or has expired (its replica stopped renewing it: dead, or stopping) is listed as not
held. On SQLite (`[state] path`), one daemon owns the file: the active watches, and whether
a daemon holds the file's lock (read from /proc/locks, so that asking never takes the lock
a starting daemon needs). A short command beside the daemons: it reads, it changes nothing
(except the schema steps every open applies).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from watcher.config.settings import ConfigError, StateSettings
from watcher.core.textsafe import visible
from watcher.core.urls import mask_url
from watcher.service.http_watches import shown
from watcher.sources.keys import describe
from watcher.state.statefile import StateError
from watcher.state.store import Store
from watcher.state.store_protocol import StoreError
from watcher.state.store_records import RunWatch, ThreadWatch

__all__ = ["lock_holder", "run_status"]

EXIT_OK = 0
REACH_TIMEOUT = 10  # seconds for the first connection: an operator is waiting

Report = dict[str, Any]


def run_status(settings: StateSettings, *, as_json: bool) -> int:
    """Print who holds what (`--json`: one JSON document) for the state `settings` names."""
    try:
        if settings.url is not None:
            report = anyio.run(_pg_report, settings.url, settings)
        else:
            report = _sqlite_report(settings.path)
    except StoreError as exc:  # a query failed after the open: unreachable all the same
        raise StateError(str(exc)) from None
    print(json.dumps(report, indent=2) if as_json else "\n".join(_text(report)))
    return EXIT_OK


def _active(
    runs: Iterable[RunWatch], threads: Iterable[ThreadWatch]
) -> dict[tuple[str, str | None], Report]:
    """The active watches by store key, each named as `/v1/watches` names it (`kind` and
    `id` for a response, a batch …) and as a person reads it (`watch`)."""
    keys: list[tuple[str, str | None, str]] = [(t.thread_id, None, t.source) for t in threads]
    keys += [(r.thread_id, r.run_id, r.source) for r in runs]
    keys.sort(key=lambda k: (k[0], k[1] or ""))
    return {
        (key, oid): {
            **shown({"thread_id": key, "run_id": oid}),
            "watch": describe(key, oid),
            "source": source,
        }
        for key, oid, source in keys
    }


async def _pg_report(url: str, settings: StateSettings) -> Report:
    try:  # psycopg: only with [state] url (the `postgres` extra)
        from watcher.state.store_pg import PgStore
    except ImportError:
        raise ConfigError(
            "state.url: PostgreSQL needs psycopg: pip install 'runstep-watcher[postgres]'"
        ) from None
    password = settings.password.get_secret_value() if settings.password else None
    await _reach(url, password)
    store = await PgStore.open(url, password=password, max_size=1)
    try:
        watches = _active(await store.run_watches(active_only=True), await store.thread_watches())
        leases = {(x.thread_id, x.run_id): x for x in await store.leases(0.0)}  # expired too
    finally:
        await store.close()
    now = time.time()  # the replicas' clock: leases expire in wall-clock time
    held: dict[str, list[Report]] = {x.owner: [] for x in leases.values() if x.expires_at > now}
    unheld: list[Report] = []
    for key, w in watches.items():
        lease = leases.get(key)
        if lease is not None and lease.expires_at > now:
            held[lease.owner].append({**w, "expires_at": lease.expires_at})
        elif lease is not None:
            expired = {"lease": "expired", "owner": lease.owner, "expires_at": lease.expires_at}
            unheld.append({**w, **expired})
        else:
            unheld.append({**w, "lease": "free"})
    replicas = [{"id": owner, "watches": held[owner]} for owner in sorted(held)]
    return {
        "backend": "postgresql",
        "state": mask_url(url),
        "now": now,
        "watches": len(watches),
        "replicas": replicas,
        "unheld": unheld,
    }


async def _reach(url: str, password: str | None) -> None:
    """One connection first, so that an unreachable database is one line at once (the
    pool behind the store retries for its whole start timeout)."""
    import psycopg

    kwargs: dict[str, Any] = {"connect_timeout": REACH_TIMEOUT}
    if password:
        kwargs["password"] = password
    try:
        conn = await psycopg.AsyncConnection.connect(url, **kwargs)
    except psycopg.Error as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StateError(f"state database {mask_url(url)}: {reason}") from None
    await conn.close()


def _sqlite_report(path: Path) -> Report:
    report: Report = {"backend": "sqlite", "state": str(path), "exists": path.exists()}
    pid = lock_holder(path)
    report["daemon"] = {"running": pid is not None, "pid": pid or None}
    if not report["exists"]:  # asked, not created: a status never makes a state file
        report["watches"] = []
        return report
    store = Store(path)
    try:
        watches = _active(store.run_watches(active_only=True), store.thread_watches())
        report["watches"] = list(watches.values())
    finally:
        store.close()
    return report


def lock_holder(path: Path) -> int | None:
    """The pid in `<path>.lock` when a daemon holds that lock (0: held, pid unknown);
    None when no process holds it."""
    lock = Path(f"{path}.lock")
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"{lock}: {exc.strerror or exc}") from None
    try:
        held = _in_proc_locks(os.fstat(fd))
        if held is None:  # no /proc/locks: ask flock itself, and let go at once
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                held = True
            else:
                fcntl.flock(fd, fcntl.LOCK_UN)
                held = False
        text = os.read(fd, 32).decode("ascii", "replace").strip() if held else ""
    finally:
        os.close(fd)
    if not held:
        return None
    return int(text) if text.isdigit() else 0


def _in_proc_locks(st: os.stat_result) -> bool | None:
    """Whether Linux lists a flock on this file (`MAJ:MIN:INODE` in /proc/locks); None
    when there is no /proc/locks to read."""
    where = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    # `1: FLOCK  ADVISORY  WRITE 1234 fe:00:2146342 0 EOF` (a waiter's line: `1: -> FLOCK`)
    fields = (line.split() for line in lines)
    return any(len(f) > 5 and f[1] == "FLOCK" and f[5] == where for f in fields)


def _when(at: float, now: float) -> str:
    clock = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    left = at - now
    return f"{clock} (in {left:.0f} s)" if left >= 0 else f"{clock} ({-left:.0f} s ago)"


def _line(w: Report, width: int, tail: str) -> str:
    return f"  {visible(w['watch']):{width}}  {visible(w['source']):7} {tail}"


def _text(r: Report) -> list[str]:
    """The report as a person reads it: ids from the API or the control API are shown with
    their control characters made visible."""
    if r["backend"] == "sqlite":
        daemon = r["daemon"]
        who = "no daemon holds it"
        if daemon["running"]:
            who = f"a daemon holds it (pid {daemon['pid'] or 'unknown'})"
        out = [f"SQLite {visible(r['state'])}: one process per state file; {who}"]
        if not r["exists"]:
            return [*out, "no state file yet: no watches"]
        out.append(f"{len(r['watches'])} active watch(es)")
        width = max((len(visible(w["watch"])) for w in r["watches"]), default=0)
        return out + [_line(w, width, "").rstrip() for w in r["watches"]]
    now, replicas, unheld = r["now"], r["replicas"], r["unheld"]
    every = [w for x in replicas for w in x["watches"]] + unheld
    width = max((len(visible(w["watch"])) for w in every), default=0)
    out = [
        f"PostgreSQL {visible(r['state'])}: {r['watches']} active watch(es), "
        f"{len(replicas)} replica(s) holding leases"
    ]
    for x in replicas:
        out.append(f"replica {visible(x['id'])}: {len(x['watches'])} watch(es)")
        out += [_line(w, width, f"lease until {_when(w['expires_at'], now)}") for w in x["watches"]]
    if unheld:
        out.append(f"not held: {len(unheld)} watch(es)")
    for w in unheld:
        if w["lease"] == "free":
            out.append(_line(w, width, "free"))
        else:
            was = visible(w["owner"])
            out.append(_line(w, width, f"expired {_when(w['expires_at'], now)}, was {was}"))
    return out
