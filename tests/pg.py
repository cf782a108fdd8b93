"""A throwaway PostgreSQL server for tests: `initdb` in a temporary directory, reached by a
unix socket only (no TCP port), started within a bound and stopped at teardown.

The server binaries are looked up on PATH, then under /usr/lib/postgresql/*/bin (Debian's
`postgresql` package; `.ci/run` installs it when missing). Without them the test is skipped,
saying so. PostgreSQL refuses to run as root: as root, the server runs as the `postgres`
user (else `nobody`), which owns its temporary directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from watcher.state.store_pg import PgStore

__all__ = ["PgServer", "find_bin", "pg", "pg_server"]

START_TIMEOUT = 30  # seconds for `pg_ctl start -w`; a loaded machine is slow to start one
USER = "watcher"  # the database superuser initdb creates (trust auth: socket only)


def find_bin(name: str) -> Path | None:
    """`name` from PATH, else from the newest /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(name)
    if found:
        return Path(found).resolve()  # /usr/local/bin/initdb may link to the real bin dir
    versions = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return versions[-1] if versions else None


@dataclass(frozen=True, slots=True)
class PgServer:
    socket_dir: Path
    port: int
    bin_dir: Path
    user: str = USER
    dbname: str = "postgres"

    @property
    def url(self) -> str:
        """A libpq URL (psycopg, asyncpg): the socket directory as `host`."""
        return f"postgresql://{self.user}@/{self.dbname}?host={self.socket_dir}&port={self.port}"

    def psql(self, sql: str) -> str:
        """Run `sql` with psql; its output (unaligned, tuples only)."""
        return subprocess.run(
            [str(self.bin_dir / "psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
            env={**os.environ, **self.env()},
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout

    def database(self, name: str) -> PgServer:
        """A new, empty database `name` on this server, to connect to."""
        self.psql(f"CREATE DATABASE {name}")
        return dataclasses.replace(self, dbname=name)

    def env(self) -> dict[str, str]:
        return {
            "PGHOST": str(self.socket_dir),
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGDATABASE": self.dbname,
        }


def _owner() -> pwd.struct_passwd | None:
    """Who runs the server: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    pytest.skip("PostgreSQL will not run as root and no postgres or nobody user exists")


def _run(args: list[str], owner: pwd.struct_passwd | None, timeout: float) -> None:
    as_owner = {} if owner is None else {"user": owner.pw_uid, "group": owner.pw_gid}
    result = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, cwd="/", **as_owner
    )
    if result.returncode != 0:
        raise RuntimeError(f"{Path(args[0]).name} failed: {result.stderr.strip()[-2000:]}")


def pg_server(settings: str = "") -> Iterator[PgServer]:
    """Start a server in a new temporary directory; stop it and remove the directory after.

    `settings`: more server options (`-c name=value …`), a bench's preloaded extension."""
    initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or under "
            "/usr/lib/postgresql/*/bin: install Debian's postgresql package (.ci/run does)"
        )
    owner = _owner()
    # a short path: a unix socket's path is limited to about 100 bytes
    root = Path(tempfile.mkdtemp(prefix="rsw-pg-"))
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    if owner is not None:
        for path in (root, sockets):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    port = 5432  # names the socket file only: no TCP listener
    options = f"-k {sockets} -p {port} -c listen_addresses='' -c fsync=off {settings}".strip()
    try:
        init = [str(initdb), "-D", str(data), "-U", USER, "-A", "trust", "--no-sync"]
        _run([*init, "-E", "UTF8", "--locale=C"], owner, 60)
        start = [str(pg_ctl), "start", "-D", str(data), "-w", "-t", str(START_TIMEOUT)]
        _run([*start, "-o", options, "-l", str(root / "log")], owner, START_TIMEOUT + 10)
        try:
            yield PgServer(sockets, port, initdb.parent)
        finally:
            _run([str(pg_ctl), "stop", "-D", str(data), "-m", "immediate", "-w"], owner, 30)
    finally:
        shutil.rmtree(root, ignore_errors=True)


pg = pytest.fixture(scope="module")(pg_server)


@contextlib.asynccontextmanager
async def open_stores(server: PgServer, n: int = 2) -> AsyncIterator[list[PgStore]]:
    """`n` stores (as `n` replicas would open them) on one database of `server`."""
    from watcher.state.store_pg import PgStore

    stores = [await PgStore.open(server.url) for _ in range(n)]
    try:
        yield stores
    finally:
        for store in stores:
            await store.close()
