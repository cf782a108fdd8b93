"""The state file on disk: created private, never through a symlink, one daemon at a time.

SQLite creates the `-wal` and `-shm` files with the database file's own permissions, so a
file created 0600 keeps all three private whatever the umask. A daemon holds an exclusive
`flock` on `<state>.lock` for its whole life (the kernel drops it when the process ends,
however it ends); the lock file holds the holder's pid for the error a second one prints.
Short commands (`outbox list | replay`) take no lock: SQLite serialises their writes.
"""

from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path

__all__ = ["StateError", "hold_lock", "prepare"]

_PRIVATE_FILE = 0o600
_PRIVATE_DIR = 0o700


class StateError(Exception):
    """The state file cannot be used; the message says why. The file is left untouched."""


def _is_memory(path: Path | str) -> bool:
    return str(path) == ":memory:"


def _open_private(path: Path, flags: int) -> int:
    """Open (creating it 0600 if absent, whatever the umask), refusing a symlink."""
    try:
        if path.is_symlink():
            raise StateError(f"{path} is a symbolic link: refused (name the real file)")
        if not path.parent.exists():
            path.parent.mkdir(parents=True, mode=_PRIVATE_DIR)
            os.chmod(path.parent, _PRIVATE_DIR)  # mkdir's mode is filtered by the umask
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, _PRIVATE_FILE)
        except FileExistsError:
            return os.open(path, flags | os.O_NOFOLLOW)
        os.fchmod(fd, _PRIVATE_FILE)
        return fd
    except OSError as exc:
        raise StateError(f"{path}: {exc.strerror or exc}") from None


def prepare(path: Path | str) -> None:
    """Before SQLite opens `path`: refuse a symlink (or what is not a regular file); create
    the file 0600, and its directory 0700, if they do not exist yet."""
    if _is_memory(path):
        return
    fd = _open_private(Path(path), os.O_RDONLY | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise StateError(f"{path} is not a regular file")
    finally:
        os.close(fd)


def hold_lock(path: Path | str) -> int | None:
    """Take `<path>.lock` for the life of the process (the descriptor is never closed);
    `StateError` naming the holder's pid when another process has it."""
    if _is_memory(path):
        return None
    prepare(path)  # a symlink is refused before anything else
    lock_path = Path(f"{path}.lock")
    fd = _open_private(lock_path, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise StateError(
            f"state file {path} is in use by another runstep-watcher (pid {holder}); "
            "one daemon per state file"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd
