"""The systemd unit's contract, and systemd's own checks of it when systemd-analyze is here."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from tests.cli import run_cli

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


def test_the_unit_gives_up_exactly_where_a_restart_cannot_help(unit, tmp_path):
    """RestartPreventExitStatus= holds the codes the daemon exits with for what a restart
    cannot fix (a bad config, an unusable state file), not the ones it can (a port in use)."""
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("[poll]\ninterval = -1\n")
    link = tmp_path / "link.db"
    link.symlink_to(tmp_path / "elsewhere.db")
    state_config = tmp_path / "ok.toml"
    state_config.write_text(
        f'[api]\nbase_url = "http://127.0.0.1:9/v1"\n[state]\npath = "{link}"\n'
    )
    key = {"OPENAI_API_KEY": "sk-test-000000000000"}
    config_code = run_cli("run", "--config", str(bad_config), **key).returncode
    state_code = run_cli("run", "--config", str(state_config), **key).returncode
    prevent = set(unit["Service"]["RestartPreventExitStatus"][0].split())
    assert (config_code, state_code) == (78, 73)
    assert prevent == {str(config_code), str(state_code)}
    assert unit["Service"]["Restart"] == ["on-failure"]  # 75 (port in use) is restarted
    assert unit["Service"]["Type"] == ["notify"]  # the daemon sends READY=1 (test_notify)
    # the daemon stops within 5 s whatever the API does (test_hung_api): under the bound
    assert int(unit["Service"]["TimeoutStopSec"][0]) > 5


def test_what_the_unit_passes_is_what_the_daemon_reads(unit, tmp_path):
    """The unit's LoadCredential= names and StateDirectory=, passed as systemd passes them
    ($CREDENTIALS_DIRECTORY, $STATE_DIRECTORY), are what the daemon reads: each secret
    arrives, masked, in the resolved settings (none printed), and the state goes into the
    state directory."""
    creds = tmp_path / "credentials"
    creds.mkdir()
    [state_dir] = unit["Service"]["StateDirectory"]
    state = tmp_path / state_dir
    state.mkdir()
    secrets = {
        "openai-api-key": ("api", "api_key", "sk-credential-0000000000"),
        "webhook-secret": ("webhook", "secret", "whsec_" + base64.b64encode(b"k" * 32).decode()),
        "http-token": ("http", "token", "token-credential-0123456789"),
    }
    loaded = [v.split(":", 1)[0] for v in unit["Service"]["LoadCredential"]]
    assert loaded and set(loaded) <= set(secrets)
    for name in loaded:
        (creds / name).write_text(secrets[name][2] + "\n")
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        '[api]\nbase_url = "https://assistants.example.internal/v1"\n'
        '[webhook]\nurl = "https://hooks.example.internal/events"\n'
        '[http]\nlisten = "127.0.0.1:9464"\n'
    )
    result = run_cli(
        "check-config", "--config", str(cfg), cwd=Path("/"),
        CREDENTIALS_DIRECTORY=str(creds), STATE_DIRECTORY=str(state),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    assert resolved["state"]["path"] == str(state / "state.db")
    for name in loaded:
        section, key, value = secrets[name]
        assert resolved[section][key] in ("**********", ["**********"]), name  # a list: rotation
        assert value not in result.stdout + result.stderr


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
