"""`simulate --scenario FILE` with no runs in it still ends its banner with a `watch`
command to paste, for the first object it serves, and that command follows it to its end."""

from __future__ import annotations

import json
import signal
import subprocess
import threading

import pytest

from tests.cli import popen_cli, run_cli

SCENARIOS = {
    "file batch": {
        "file_batches": [
            {
                "id": "vsfb_x",
                "vector_store_id": "vs_x",
                "timeline": [["in_progress", 0], ["completed", 1]],
            }
        ]
    },
    "fine-tuning job": {
        "fine_tuning_jobs": [{"id": "ftjob-x", "timeline": [["running", 0], ["succeeded", 1]]}]
    },
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_a_scenario_without_runs_gives_a_command_that_works(tmp_path, name):
    """Before: the banner ended at the `_sim/scenario` line, with no command at all."""
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps(SCENARIOS[name]))
    proc = popen_cli("simulate", "--scenario", str(scenario))
    try:
        assert proc.stdout is not None and proc.stderr is not None
        url = proc.stdout.readline().strip()
        banner: list[str] = []
        said = threading.Event()

        def read() -> None:
            for line in proc.stderr or ():
                banner.append(line)
                if line.startswith("  OPENAI_BASE_URL="):
                    said.set()

        threading.Thread(target=read, daemon=True).start()
        said.wait(10)  # the banner is written at once; after it the simulator says nothing
        command = banner[-1].strip().split() if banner else []
        assert command[:3] == [f"OPENAI_BASE_URL={url}", "runstep-watcher", "watch"], banner
        done = run_cli(
            *command[2:], "--exit-status", "--json", "--timeout", "30s", OPENAI_BASE_URL=url
        )
        assert done.returncode == 0, done.stderr[-500:]
        assert json.loads(done.stdout.splitlines()[-1])["data"]["status"] in {
            "completed",
            "succeeded",
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
