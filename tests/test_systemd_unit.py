"""The systemd unit's contract, and systemd's own checks of it when systemd-analyze is here."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "systemd" / "runstep-watcher.service"
CHECK = ROOT / ".ci" / "systemd-check"
EXEC = "/opt/runstep-watcher/bin/runstep-watcher"  # the venv systemd/README.md makes
MAX_EXPOSURE = 1.2

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze not installed (.ci/systemd-check installs Debian's systemd)",
)


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections of key → values, in order (a key may repeat, as SystemCallFilter= does)."""
    sections: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not KEY=VALUE: {raw!r}"
        sections[current][key.strip()].append(value.strip())
    return sections


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    return parse_unit(UNIT.read_text())


def test_parse_unit_keeps_repeated_keys():
    parsed = parse_unit("[Service]\n# c\nA=1\nA=~2 3\nB=\n")
    assert parsed["Service"] == {"A": ["1", "~2 3"], "B": [""]}


def test_lifecycle_contract(unit):
    svc, u = unit["Service"], unit["Unit"]
    assert svc["Type"] == ["notify"]  # not notify-reload: systemd 252 lacks it
    assert svc["NotifyAccess"] == ["main"]
    assert svc["WatchdogSec"] == ["30"]
    assert svc["ExecStart"] == [f"{EXEC} run --config /etc/runstep-watcher/config.toml"]
    assert svc["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert svc["TimeoutStopSec"] == ["10"]
    assert svc["Restart"] == ["on-failure"]
    assert svc["RestartSec"] == ["5"]
    assert set(svc["RestartPreventExitStatus"][0].split()) == {"78", "73"}
    assert u["StartLimitIntervalSec"] == ["300"]
    assert u["StartLimitBurst"] == ["5"]
    assert "StartLimitBurst" not in svc  # its home is [Unit]; [Service] is a legacy alias
    assert "PYTHONUNBUFFERED=1" in svc["Environment"]


def test_state_and_credentials(unit):
    svc = unit["Service"]
    assert svc["DynamicUser"] == ["yes"]
    assert svc["StateDirectory"] == ["runstep-watcher"]
    creds = dict(v.split(":", 1) for v in svc["LoadCredential"])
    assert creds == {
        "openai-api-key": "/etc/runstep-watcher/openai-api-key",
        "webhook-secret": "/etc/runstep-watcher/webhook-secret",
    }


def test_hardening(unit):
    svc = unit["Service"]
    expected = {
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "PrivateUsers": "yes",
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",
        "AmbientCapabilities": "",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "SystemCallArchitectures": "native",
        "SystemCallErrorNumber": "EPERM",
        "MemoryDenyWriteExecute": "yes",
        "ProtectProc": "invisible",
        "UMask": "0077",
        "DevicePolicy": "closed",
        "KeyringMode": "private",
    }
    assert {k: svc[k] for k in expected} == {k: [v] for k, v in expected.items()}
    assert svc["SystemCallFilter"] == ["@system-service", "~@privileged @resources"]
    for key in (
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectKernelLogs",
        "ProtectControlGroups",
        "ProtectClock",
        "ProtectHostname",
        "RestrictNamespaces",
        "RestrictRealtime",
        "RestrictSUIDSGID",
        "LockPersonality",
        "RemoveIPC",
    ):
        assert svc[key] == ["yes"], key
    # the daemon must reach its API and webhook wherever they are
    assert "IPAddressDeny" not in svc and "PrivateNetwork" not in svc


def _copy_with_existing_exec(tmp_path: Path) -> Path:
    """verify wants ExecStart's binary to exist: point a copy at one that does."""
    exe = shutil.which("runstep-watcher") or shutil.which("true")
    assert exe
    text = UNIT.read_text()
    assert f"ExecStart={EXEC} " in text
    copy = tmp_path / UNIT.name
    copy.write_text(text.replace(f"ExecStart={EXEC} ", f"ExecStart={exe} "))
    return copy


@needs_systemd_analyze
def test_systemd_analyze_verify_prints_nothing(tmp_path):
    copy = _copy_with_existing_exec(tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@needs_systemd_analyze
def test_systemd_analyze_security_rating(tmp_path):
    copy = _copy_with_existing_exec(tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", result.stdout)
    assert found, result.stdout + result.stderr
    assert float(found[1]) <= MAX_EXPOSURE, result.stdout


@needs_systemd_analyze
def test_ci_script_agrees():
    result = subprocess.run(["bash", str(CHECK)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.fullmatch(
        r"systemd unit: verify clean, exposure [\d.]+ \(max 1\.2\)\n", result.stdout
    ), result.stdout
    assert result.stderr == ""
