"""Run the real `runstep-watcher` CLI as a process (python -m watcher)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLEAN_ENV_DROP = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "STATE_DIRECTORY",
    "CREDENTIALS_DIRECTORY",
    "RUNSTEP_WATCHER_LOG_LEVEL",
    "RUNSTEP_WATCHER_WEBHOOK_SECRET",
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
)


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV_DROP}
    out.update(extra)
    return out


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 60, **extra_env: str):
    return subprocess.run(
        [sys.executable, "-m", "watcher", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env(**extra_env),
        stdin=subprocess.DEVNULL,
    )


def popen_cli(*args: str, cwd: Path | None = None, **extra_env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "watcher", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=cwd,
        env=env(**extra_env),
    )
