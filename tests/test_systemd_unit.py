"""The systemd unit's contract, and systemd's own checks of it when systemd-analyze is here."""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "systemd" / "runstep-watcher.service"


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections of key → values (a key may repeat, as SystemCallFilter= does)."""
    sections: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    current = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        sections[current][key].append(value)
    return sections


def test_unit_contract():
    unit = parse_unit(UNIT.read_text())
    svc, u = unit["Service"], unit["Unit"]
    assert svc["Type"] == ["notify"]
    assert svc["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert svc["Restart"] == ["on-failure"]
    assert "78" in svc["RestartPreventExitStatus"][0].split()
    assert svc["StateDirectory"] == ["runstep-watcher"]
    assert svc["DynamicUser"] == ["yes"]
    creds = {v.split(":")[0] for v in svc["LoadCredential"]}
    assert creds == {"openai-api-key", "webhook-secret"}
    assert svc["WatchdogSec"] and svc["NotifyAccess"] == ["main"]
    assert u["StartLimitBurst"] and u["StartLimitIntervalSec"]
    assert svc["CapabilityBoundingSet"] == [""]
    assert svc["ExecStart"][0].split()[1:3] == ["run", "--config"]


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze not installed (.ci/systemd-check installs it)",
)
def test_systemd_analyze_verify_and_security():
    result = subprocess.run(
        ["bash", str(ROOT / ".ci" / "systemd-check")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verify clean" in result.stdout
