"""The sidecar container and Kubernetes manifest: what can be checked without an engine."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from tests.cli import run_cli

ROOT = Path(__file__).resolve().parents[1]


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_dockerfile_entrypoint_is_exec_form_and_user_is_not_root():
    text = dockerfile()
    entry = re.search(r"^ENTRYPOINT (.+)$", text, re.M)
    assert entry is not None
    assert json.loads(entry.group(1)) == ["runstep-watcher", "run"]  # exec form, not shell form
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert "pip install ." in text
    assert re.search(r"^FROM python:3\.\d+-slim$", text, re.M)


def test_entry_command_accepts_env_only_configuration(tmp_path):
    """The container's command with a config mounted and the key only in the environment."""
    cfg = tmp_path / "config.toml"
    cfg.write_text('[[watch]]\nthread_id = "thread_1"\n')
    result = run_cli(
        "check-config",
        "--config",
        str(cfg),
        OPENAI_API_KEY="sk-env-only-000000000000",
        OPENAI_BASE_URL="https://assistants.internal.example/v1",
        STATE_DIRECTORY=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    assert resolved["api"]["base_url"] == "https://assistants.internal.example/v1"
    assert resolved["state"]["path"] == str(tmp_path / "state.db")
    assert "sk-env-only" not in result.stdout


def test_manifest_probes_and_secret():
    docs = list(yaml.safe_load_all((ROOT / "deploy/kubernetes/sidecar.yaml").read_text()))
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    [watcher] = [
        c
        for c in deployment["spec"]["template"]["spec"]["containers"]
        if c["name"] == "runstep-watcher"
    ]
    assert watcher["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert watcher["readinessProbe"]["httpGet"]["path"] == "/readyz"
    env = {e["name"]: e for e in watcher["env"]}
    assert env["OPENAI_API_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "openai-api-key"
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["config.toml"]
    assert "[http]" in config and 'listen = "0.0.0.0:9464"' in config
    assert "token_file" in config  # a token is mandatory beyond loopback
