"""Issue 14: what trips a new user and an operator in their first hour, through the CLI as a
process: exit codes for scripts, timeouts, options, the simulator by hand, systemd files."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest

from tests.cli import env, popen_cli, run_cli
from tests.proc import Daemon
from watcher import __version__
from watcher.config.settings import Settings
from watcher.core.events import Event
from watcher.delivery.webhook import SINK
from watcher.state.store import Store

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config" / "example.toml"
NEVER_ENDS = {
    "threads": [
        {
            "id": "thread_a",
            "runs": [{"id": "run_1", "timeline": [["queued", 0], ["completed", 1e6]]}],
        }
    ]
}


def dead_url() -> str:
    """A loopback base URL where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


# -- scripts and shells ------------------------------------------------------------------


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_watch_exit_status_interrupted_is_not_success(sim, sig, code):
    s = sim(NEVER_ENDS)
    d = Daemon(
        "watch", "thread_a", "run_1", "--exit-status", "--log-level", "info",
        OPENAI_BASE_URL=s.base_url,
    )  # fmt: skip
    try:
        d.wait_events(1)  # thread.run.queued: it is watching
        assert d.stop(sig) == code
    finally:
        d.kill()


def test_demo_interrupted_is_not_success():
    d = Daemon("demo", "--json")
    try:
        d.wait_events(1)
        assert d.stop(signal.SIGINT) == 130
    finally:
        d.kill()


def test_watch_timeout_exits_124_and_every_connection_error_names_the_url():
    url = dead_url()
    result = run_cli(
        "watch", "thread_a", "run_1", "--timeout", "1.5s", "--base-url", url, "--exit-status"
    )
    assert result.returncode == 124, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[-1] == "runstep-watcher: --timeout 1.5s ran out before run run_1 ended"
    errors = [json.loads(line) for line in lines[:-1] if "connection error" in line]
    assert errors, result.stderr
    assert all(f"GET {url}/threads/thread_a/runs/run_1" in e["error"] for e in errors)


def test_the_daemon_keeps_retrying_and_says_where(tmp_path):
    url = dead_url()
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[api]\nbase_url = "{url}"\n[[watch]]\nthread_id = "thread_a"\n')
    d = Daemon("run", "--config", str(cfg), "--state", str(tmp_path / "s.db"))
    try:
        d.wait_log(f"GET {url}/threads/thread_a/runs")
        d.wait_log('"retrying"')
        assert d.proc.poll() is None  # still going
    finally:
        d.kill()


def test_under_systemd_log_lines_carry_their_priority():
    """JOURNAL_STREAM names stderr's device:inode: each line starts with <N> (sd-daemon(3))."""
    read, write = os.pipe()
    st = os.fstat(write)
    proc = subprocess.Popen(
        [sys.executable, "-m", "watcher", "watch", "thread_a", "run_1", "--timeout", "1"],
        stdout=subprocess.DEVNULL,
        stderr=write,
        stdin=subprocess.DEVNULL,
        env=env(OPENAI_BASE_URL=dead_url(), JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}"),
    )
    os.close(write)
    with os.fdopen(read, encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert proc.wait(30) == 124
    logged = [line for line in lines if not line.startswith("runstep-watcher:")]
    assert logged and all(re.match(r"<[3-7]>\{", line) for line in logged), lines
    warnings = [line for line in logged if '"level": "warning"' in line]
    assert warnings and all(line.startswith("<4>") for line in warnings)
    assert any(line.startswith("<6>") for line in logged)  # info: "watching"


def test_log_level_and_version_before_and_after_the_command_and_log_format(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[api]\nbase_url = "http://127.0.0.1:9/v1"\n')
    for args in (
        ["--log-level", "debug", "check-config", "--config", str(cfg)],
        ["check-config", "--config", str(cfg), "--log-level", "debug"],
    ):
        result = run_cli(*args)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["log"]["level"] == "debug"
    for args in (["--version"], ["outbox", "list", "--version"]):
        result = run_cli(*args)
        assert (result.returncode, result.stdout) == (0, f"runstep-watcher {__version__}\n")
    url = dead_url()
    console = run_cli("--log-format", "console", "watch", "t_1", "r_1", "--timeout", "1",
                      "--base-url", url)  # fmt: skip
    assert console.returncode == 124  # (stderr a pipe: JSON by default, as tested above)
    assert "[warning" in console.stderr and '"level"' not in console.stderr


def test_config_file_from_the_environment(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[api]\nbase_url = "http://127.0.0.1:9/v1"\n[poll]\ninterval = 2.5\n')
    result = run_cli("check-config", RUNSTEP_WATCHER_CONFIG=str(cfg))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["poll"]["interval"] == 2.5
    flag_wins = run_cli("check-config", "--config", str(EXAMPLE), RUNSTEP_WATCHER_CONFIG="/no")
    assert flag_wins.returncode == 78 and "no API key" in flag_wins.stderr  # the flag's file
    neither = run_cli("check-config")
    assert neither.returncode == 2
    assert "--config FILE (or $RUNSTEP_WATCHER_CONFIG) is required" in neither.stderr


def _outbox_state(tmp_path: Path) -> tuple[Path, str]:
    """A config and a state file with one event pending delivery to the webhook."""
    db = tmp_path / "s.db"
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[state]\npath = "{db}"\n')
    store = Store(db)
    data = {"id": "run_1", "object": "thread.run", "status": "queued"}
    ev = Event("evt_pending1", "thread.run.queued", 1, data, None, "thread_a", "run_1")
    store.record(
        "thread_a", "run_1", [ev], {}, cursor=None, done=False, sinks=[SINK],
        deadlines={SINK: 2e9},
    )  # fmt: skip
    store.close()
    return cfg, ev.id


def test_outbox_exit_codes_mean_one_thing_and_list_json(tmp_path):
    cfg, pending = _outbox_state(tmp_path)
    listed = run_cli("outbox", "list", "--json", "--config", str(cfg))
    assert listed.returncode == 0, listed.stderr
    [item] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (item["event_id"], item["state"], item["run_id"]) == (pending, "pending", "run_1")
    unknown = run_cli("outbox", "replay", "evt_nosuch", "--config", str(cfg))
    assert unknown.returncode == 4
    assert unknown.stderr == "runstep-watcher: evt_nosuch: not in the outbox\n"
    not_dead = run_cli("outbox", "replay", pending, "--config", str(cfg))
    assert not_dead.returncode == 4
    assert not_dead.stderr == f"runstep-watcher: {pending}: pending, not a dead letter\n"
    for bad in (["--since", "yesterday"], ["evt_../x"]):
        result = run_cli("outbox", "replay", *bad, "--config", str(cfg))
        assert result.returncode == 2, result.stderr  # usage, not a config error
        assert "Traceback" not in result.stderr


# -- the simulator by hand -----------------------------------------------------------------


def test_simulate_says_what_it_serves_and_the_pasted_command_works():
    proc = popen_cli("simulate", "--loop")
    try:
        assert proc.stdout is not None and proc.stderr is not None
        url = proc.stdout.readline().strip()
        banner: list[str] = []
        while line := proc.stderr.readline():  # ends at EOF: a simulator that stopped
            banner.append(line.rstrip("\n"))
            if line.startswith("  OPENAI_BASE_URL="):
                break
        assert banner and banner[-1].startswith("  OPENAI_BASE_URL="), banner
        text = "\n".join(banner)
        assert f"a simulated Assistants API at {url}" in text
        assert "thread_demo_support: run_demo_weather, run_demo_analysis" in text
        assert "--loop: the runs start again every 20 s" in text
        listing = httpx.get(url.removesuffix("/v1") + "/_sim/scenario").json()
        runs = {r for t in listing["threads"] for r in t["runs"]}
        assert {"run_demo_weather", "run_demo_weather_2", "run_demo_weather_100"} <= runs
        assert "resp_demo_summary" in listing["responses"] and listing["batches"]
        assert "responses: resp_demo_summary" in text  # objects of every kind it serves
        command = banner[-1].strip().split()
        assert command[:3] == [f"OPENAI_BASE_URL={url}", "runstep-watcher", "watch"]
        watched = Daemon(*command[2:], OPENAI_BASE_URL=url)
        try:
            first = watched.wait_events(1)[0]  # (its steps may follow, if they have begun)
            assert first["data"]["id"] == command[-1]
            assert watched.stop(signal.SIGINT) == 130
        finally:
            watched.kill()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


# -- systemd and containers -----------------------------------------------------------------


def _keys_by_section(text: str) -> dict[str, set[str]]:
    """Keys set or shown commented out, per [section] (commented headers count)."""
    out: dict[str, set[str]] = {}
    section = ""
    for line in text.splitlines():
        if m := re.match(r"#?\s*\[\[?(\w+)\]\]?\s*(#.*)?$", line):
            section = m[1]
        elif m := re.match(r"#?\s*(\w+)\s*=", line):
            out.setdefault(section, set()).add(m[1])
    return out


def test_example_config_documents_every_key_and_leaves_the_state_path_to_systemd():
    documented = _keys_by_section(EXAMPLE.read_text())
    for name, field in Settings.model_fields.items():
        model = field.annotation
        model = next((a for a in getattr(model, "__args__", ()) if a is not type(None)), model)
        model = next(iter(getattr(model, "__args__", ())), model)  # tuple[WatchSpec, ...]
        keys = set(model.model_fields) - {"api_key", "password"}  # secrets never go in the file
        assert keys <= documented.get(name, set()), (name, keys - documented.get(name, set()))
    assert "path" not in tomllib.loads(EXAMPLE.read_text()).get("state", {})


def test_example_config_under_systemd_puts_the_state_in_the_state_directory(tmp_path):
    state, creds = tmp_path / "state", tmp_path / "credentials"
    state.mkdir()
    creds.mkdir()
    (creds / "openai-api-key").write_text("sk-credential-0000000000\n")
    result = run_cli(
        "check-config", "--config", str(EXAMPLE), cwd=Path("/"),
        STATE_DIRECTORY=str(state), CREDENTIALS_DIRECTORY=str(creds),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    assert resolved["state"]["path"] == str(state / "state.db")
    assert resolved["api"]["api_key"] == "**********"
    assert "sk-credential" not in result.stdout


def test_check_config_reads_a_key_that_arrives_as_a_credential(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "openai-api-key").write_text("sk-from-credential-000000\n")
    cfg = etc / "config.toml"
    cfg.write_text('[api]\nbase_url = "https://assistants.example.internal/v1"\n')
    without = run_cli("check-config", "--config", str(cfg))
    assert without.returncode == 78
    assert "add --credentials-dir DIR" in without.stderr
    with_dir = run_cli("check-config", "--config", str(cfg), "--credentials-dir", str(etc))
    assert with_dir.returncode == 0, with_dir.stderr
    assert json.loads(with_dir.stdout)["api"]["api_key"] == "**********"
    missing = run_cli("check-config", "--config", str(cfg), "--credentials-dir", "/no/such")
    assert missing.returncode == 2 and "--credentials-dir" in missing.stderr


def test_systemd_steps_install_into_a_venv_that_the_unit_runs():
    readme = (ROOT / "systemd" / "README.md").read_text()
    unit = (ROOT / "systemd" / "runstep-watcher.service").read_text()
    steps = readme[readme.index("```sh") : readme.index("```", readme.index("```sh") + 5)]
    assert "sudo pip install" not in steps  # PEP 668: Debian's Python refuses it
    venv = re.search(r"sudo python3 -m venv (\S+)", steps)
    assert venv and f"sudo {venv[1]}/bin/pip install ." in steps
    exec_start = re.search(r"^ExecStart=(\S+) run ", unit, re.M)
    assert exec_start and exec_start[1] == f"{venv[1]}/bin/runstep-watcher"
    assert "--credentials-dir /etc/runstep-watcher" in steps


def test_sidecar_app_gets_the_http_token_from_the_same_secret():
    import yaml

    docs = list(yaml.safe_load_all((ROOT / "deploy/kubernetes/sidecar.yaml").read_text()))
    secret = next(d for d in docs if d["kind"] == "Secret")
    containers = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"][
        "containers"
    ]
    app = next(c for c in containers if c["name"] == "app")
    refs = [e["valueFrom"]["secretKeyRef"] for e in app["env"] if "valueFrom" in e]
    assert {"name": secret["metadata"]["name"], "key": "http-token"} in refs
    assert "http-token" in secret["stringData"]


def test_sighup_applies_a_new_http_token_and_metrics_carry_the_version(sim, tmp_path):
    s = sim(NEVER_ENDS)
    cfg = tmp_path / "c.toml"

    def write(token: str) -> None:
        cfg.write_text(
            f'[api]\nbase_url = "{s.base_url}"\n[http]\nlisten = "127.0.0.1:0"\n'
            f'token = "{token}"\n[[watch]]\nthread_id = "thread_a"\nrun_id = "run_1"\n'
        )

    write("old-token-0123456789")
    d = Daemon("run", "--config", str(cfg), "--state", str(tmp_path / "s.db"))
    try:
        d.wait_log("http endpoint listening")
        port = next(json.loads(x)["port"] for x in d.stderr if "http endpoint listening" in x)
        base = f"http://127.0.0.1:{port}"

        def status(token: str) -> int:
            headers = {"Authorization": f"Bearer {token}"}
            return httpx.get(f"{base}/status", headers=headers).status_code

        assert status("old-token-0123456789") == 200
        metrics = httpx.get(f"{base}/metrics").text
        assert f'runstep_watcher_build_info{{version="{__version__}"}} 1.0' in metrics
        write("new-token-9876543210")
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log("config reloaded")
        assert status("old-token-0123456789") == 401
        assert status("new-token-9876543210") == 200
        assert "token-" not in d.output()
        assert d.stop() == 0
    finally:
        d.kill()


@pytest.mark.anyio
async def test_a_looped_scenario_keeps_starting_runs():
    """`simulate --loop`: every 20 s the built-in runs start again as new runs, in the same
    threads, and play out as the first ones did."""
    from watcher.simulator.app import ManualClock, create_app
    from watcher.simulator.loop import loop_period, looped
    from watcher.simulator.scenario import default_scenario

    clock = ManualClock()
    first = default_scenario()
    assert loop_period(first) == 20.0
    app = create_app(looped(first), clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:

        async def runs() -> list[dict]:
            r = await client.get(
                "/v1/threads/thread_demo_support/runs", headers={"OpenAI-Beta": "assistants=v2"}
            )
            return r.json()["data"]

        assert {r["id"] for r in await runs()} == {"run_demo_weather", "run_demo_analysis"}
        clock.advance(179 * 20 + 0.5)  # the 180th round has just started
        latest = await runs()
        assert {r["id"]: r["status"] for r in latest[:2]} == {
            "run_demo_weather_180": "queued",
            "run_demo_analysis_180": "queued",
        }
        clock.advance(20)
        assert (await runs())[0]["id"].endswith("_181")


def test_output_into_a_closed_pipe_is_no_traceback():
    """`check-config | head -3`: the reader goes away; exit as SIGPIPE would, quietly."""
    read, write = os.pipe()
    os.close(read)
    proc = subprocess.run(
        [sys.executable, "-m", "watcher", "check-config", "--config", str(EXAMPLE)],
        stdout=write,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        env=env(OPENAI_API_KEY="sk-pipe-000000000000"),
    )
    os.close(write)
    assert (proc.returncode, proc.stderr) == (141, "")
