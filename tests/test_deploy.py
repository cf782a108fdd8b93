"""The sidecar container and Kubernetes manifest: what can be checked without an engine."""

from __future__ import annotations

import base64
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


def _pod_runs_check_config(tmp_path: Path, manifest: str) -> tuple[dict, dict, dict]:
    """`check-config` on the manifest's config as its pod would see it: the ConfigMap and
    the Secret mounted where the container mounts them (under tmp_path), the environment
    from the Secret's keys. (the resolved settings, the Deployment, its watcher container)"""
    docs = list(yaml.safe_load_all((ROOT / "deploy/kubernetes" / manifest).read_text()))
    kinds = {d["kind"]: d for d in docs}
    # the operator replaces the placeholders: a webhook secret has a format to pass
    real = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
    secret = {**kinds["Secret"]["stringData"], "webhook-secret": real}
    deployment = kinds["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    [container] = [c for c in pod["containers"] if c["name"] == "runstep-watcher"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_text = ""
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            assert volume["configMap"]["name"] == kinds["ConfigMap"]["metadata"]["name"]
            config_text = kinds["ConfigMap"]["data"][mount["subPath"]]
            config_at = mount["mountPath"]
        elif "secret" in volume:
            assert volume["secret"]["secretName"] == kinds["Secret"]["metadata"]["name"]
            where = tmp_path / mount["mountPath"].lstrip("/")
            where.mkdir(parents=True)
            for key, value in secret.items():
                (where / key).write_text(value)
            config_text = config_text.replace(mount["mountPath"], str(where))
    assert config_text and container["args"] == ["--config", config_at]
    env = {}
    for item in container["env"]:
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ref["name"] == kinds["Secret"]["metadata"]["name"]
        env[item["name"]] = secret[ref["key"]] if ref else item["value"]
    cfg = tmp_path / "config.toml"
    cfg.write_text(config_text)
    result = run_cli("check-config", "--config", str(cfg), **env)
    assert result.returncode == 0, result.stderr
    for value in secret.values():
        assert value not in result.stdout + result.stderr
    return json.loads(result.stdout), deployment, container


def test_replicas_manifest_runs_its_config_on_postgresql_with_the_secret(tmp_path):
    """The 3-replica Deployment: its config, with the pod's mounts and environment, is
    valid, keeps its state in PostgreSQL (password from the Secret, masked), and the probes
    reach the port it listens on."""
    resolved, deployment, container = _pod_runs_check_config(tmp_path, "replicas.yaml")
    assert deployment["spec"]["replicas"] == 3
    state = resolved["state"]
    assert state["url"].startswith("postgresql://runstep_watcher@postgres.")
    assert state["password"] == "**********"  # read from $PGPASSWORD, shown masked
    _probes_reach_the_listen_port(resolved, container)
    assert not any(
        "persistentVolumeClaim" in v or "emptyDir" in v
        for v in deployment["spec"]["template"]["spec"]["volumes"]
    )  # no state file


def test_sidecar_manifest_runs_its_config_with_the_secret(tmp_path):
    resolved, _deployment, container = _pod_runs_check_config(tmp_path, "sidecar.yaml")
    assert resolved["state"]["path"] == "/var/lib/runstep-watcher/state.db"
    assert resolved["http"]["token"] == "**********"
    _probes_reach_the_listen_port(resolved, container)


def _probes_reach_the_listen_port(resolved: dict, container: dict) -> None:
    """The kubelet probes the pod's IP: the endpoint listens beyond loopback, on their port."""
    host, port = resolved["http"]["listen"].rsplit(":", 1)
    assert host not in ("127.0.0.1", "localhost", "[::1]")
    probes = {
        container[p]["httpGet"]["path"]: container[p]["httpGet"]["port"]
        for p in ("livenessProbe", "readinessProbe")
    }
    assert probes == {"/livez": int(port), "/readyz": int(port)}
