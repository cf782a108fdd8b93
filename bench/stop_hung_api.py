"""SIGTERM to exit while the API hangs: 24 runs, every answer taking 40 s, a webhook
receiver that never answers, the HTTP endpoint on. The promise: exit 0 within 5 s.

python bench/stop_hung_api.py --repeat 5 --report bench/stop_hung_api.md   (about 1 minute)
"""

from __future__ import annotations

import argparse
import base64
import json
import signal
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import SimHandle  # noqa: E402
from tests.mute import MuteServer  # noqa: E402
from tests.proc import Daemon  # noqa: E402

RUNS = 24
DELAY = 40.0
SECRET = "whsec_" + base64.b64encode(b"x" * 24).decode()


def config(tmp: Path, api: str, hook_port: int) -> Path:
    text = (
        f'[api]\nbase_url = "{api}"\n[state]\npath = "{tmp / "state.db"}"\n'
        f'[http]\nlisten = "127.0.0.1:0"\n'
        f'[webhook]\nurl = "http://127.0.0.1:{hook_port}/hook"\nsecret = "{SECRET}"\n'
    )
    for i in range(RUNS):
        text += f'[[watch]]\nthread_id = "thread_1"\nrun_id = "run_{i:03d}"\n'
    path = tmp / "config.toml"
    path.write_text(text)
    return path


def once(tmp: Path) -> tuple[int, float, int]:
    """(exit code, seconds from SIGTERM to exit, polls in flight when it was sent)."""
    runs = [
        {
            "id": f"run_{i:03d}",
            "timeline": [["queued", 0], ["in_progress", 0.5]],
            "steps": [{"id": f"step_{i:03d}", "timeline": [["in_progress", 0.5]]}],
        }
        for i in range(RUNS)
    ]
    sim = SimHandle({"threads": [{"id": "thread_1", "runs": runs}]})
    hook = MuteServer()
    d = Daemon("run", "--config", str(config(tmp, sim.base_url, hook.port)))
    try:
        d.wait_events(RUNS)  # every run seen: webhook deliveries pending, the receiver mute
        d.wait_log("http endpoint listening")
        port = next(
            int(json.loads(line)["port"]) for line in d.stderr if "http endpoint listening" in line
        )
        sim.advance(1)
        sim.faults([{"kind": "delay", "seconds": DELAY, "count": 100_000}])
        hook.wait_connections(1)
        deadline = time.monotonic() + 30
        in_flight = 0
        while in_flight < 8 and time.monotonic() < deadline:  # every slot waits on the API
            status = httpx.get(f"http://127.0.0.1:{port}/status").json()
            in_flight = int(status["polls_in_flight"])
            time.sleep(0.2)
        started = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        code = d.wait_exit(120)
        return code, time.monotonic() - started, in_flight
    finally:
        d.kill()
        hook.close()
        sim.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--report", type=Path)
    args = p.parse_args()
    rows = []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            code, seconds, in_flight = once(Path(tmp))
        rows.append(f"| {i + 1} | {in_flight} | {code} | {seconds:.2f} |")
        print(rows[-1], flush=True)
    table = "\n".join(
        ["| try | polls in flight | exit code | SIGTERM → exit (s) |", "|---|---|---|---|", *rows]
    )
    text = f"""# SIGTERM while the API hangs

`python bench/stop_hung_api.py --repeat {args.repeat} --report bench/stop_hung_api.md`:
{RUNS} runs, every API answer delayed {DELAY:.0f} s (the simulator's delay fault), a webhook
receiver that accepts and never answers, the HTTP endpoint on; SIGTERM once every poll slot
(8) waits on the API. Promised: exit 0 within 5 s. Before the fix (commit 39dbb77, the
same setup driven by hand) the daemon had not exited 120 s after SIGTERM: the dispatcher
sat in the concurrency limiter until a poll ended (30 s timeout x 5 attempts).

{table}
"""
    if args.report:
        args.report.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
