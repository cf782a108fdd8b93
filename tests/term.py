"""A minimal terminal for tests: plays back what a program wrote to a pty and returns the
final screen (the escapes rich's live display uses: CR, LF, cursor up, erase line, SGR)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.cli import env

_ESC = re.compile(r"\x1b\[(\??)([0-9;]*)([A-Za-z])")


def screen(output: str, width: int) -> list[str]:
    """The lines on screen (scrollback included) after `output` was written."""
    lines: list[list[str]] = [[]]
    row = col = 0
    i = 0
    while i < len(output):
        ch = output[i]
        m = _ESC.match(output, i) if ch == "\x1b" else None
        if m:
            i = m.end()
            private, arg, cmd = m.groups()
            n = int(arg) if arg.isdigit() else 1
            if private:
                continue
            if cmd == "A":
                row = max(0, row - n)
            elif cmd == "B":
                row += n
            elif cmd == "K":  # erase line (2K: all of it; K: to its end)
                lines[row][:] = [] if arg == "2" else lines[row][:col]
            elif cmd == "G":
                col = n - 1
            continue
        i += 1
        if ch == "\r":
            col = 0
        elif ch == "\n":
            row, col = row + 1, 0
        elif ch >= " ":
            if col >= width:
                row, col = row + 1, 0
            while len(lines) <= row:
                lines.append([])
            line = lines[row]
            line.extend(" " * (col - len(line)))
            line[col : col + 1] = [ch]
            col += 1
        while len(lines) <= row:
            lines.append([])
    return ["".join(line).rstrip() for line in lines]


def run_on_pty(*args: str, cwd: Path | None = None, timeout: float = 30, **extra: str):
    """Run the CLI with stdout and stderr on one pty; (exit code, everything it wrote)."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "watcher", *args],
        stdout=slave,
        stderr=slave,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        env=env(**extra),
    )
    os.close(slave)
    chunks = []
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        os.close(master)
    return code, b"".join(chunks).decode("utf-8", "replace")
