"""The scenario behind tests/fixtures/state-v1.db: one run, half done when the first release
stopped, its webhook receiver refusing one event (dead) and then gone (pending)."""

from __future__ import annotations

from pathlib import Path

SECRET = "whsec_dXBncmFkZS1maXh0dXJlLXNlY3JldC0xMjM0NTY3OA=="
#: Where the first release stopped on the simulator's clock.
STOPPED_AT = 2.0
SCENARIO = {
    "threads": [
        {
            "id": "thread_u",
            "runs": [
                {
                    "id": "run_u1",
                    "timeline": [["queued", 0], ["in_progress", 1], ["completed", 4]],
                    "steps": [
                        {"id": "step_u1", "timeline": [["in_progress", 1], ["completed", 2]]},
                        {"id": "step_u2", "timeline": [["in_progress", 3], ["completed", 4]]},
                    ],
                },
            ],
        }
    ]
}


def config(tmp_path: Path, base_url: str, hook_url: str, state: Path) -> str:
    """A config both releases read (keys of the first release only)."""
    path = tmp_path / "c.toml"
    path.write_text(
        f'[api]\nbase_url = "{base_url}"\n[poll]\ninterval = 0.05\nmax_interval = 0.2\n'
        f'[state]\npath = "{state}"\n'
        f'[webhook]\nurl = "{hook_url}"\nsecret = ["{SECRET}"]\nschedule = [0, 0.2, 0.5]\n'
        '[[watch]]\nthread_id = "thread_u"\nrun_id = "run_u1"\n'
    )
    return str(path)
