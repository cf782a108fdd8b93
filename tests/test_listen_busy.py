"""An [http] listen port already in use: one line naming it, exit 75, no traceback."""

from __future__ import annotations

import socket

from tests import test_production as prod
from tests.cli import run_cli


def test_a_port_in_use_is_one_line_and_exit_75(sim, tmp_path):
    s = sim(prod.SCENARIO)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = prod.config(tmp_path, s.base_url, [("thread_a", "run_1")], port=port)
        result = run_cli("run", "--config", str(cfg), timeout=30, OPENAI_API_KEY=prod.KEY)
    assert result.returncode == 75, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if f"127.0.0.1:{port}" in line]
    assert len(lines) == 1 and "[http] listen" in lines[0] and "in use" in lines[0]
    assert result.stdout == ""  # nothing was polled: no event


def test_an_address_not_on_this_host_is_a_config_error(sim, tmp_path):
    s = sim(prod.SCENARIO)
    cfg = prod.config(tmp_path, s.base_url, [("thread_a", "run_1")], port=9464)
    cfg.write_text(cfg.read_text().replace("127.0.0.1:9464", "192.0.2.1:9464"))  # TEST-NET-1
    result = run_cli("run", "--config", str(cfg), timeout=30, OPENAI_API_KEY=prod.KEY)
    assert result.returncode == 78, result.stderr
    assert "Traceback" not in result.stderr
    assert "[http] listen 192.0.2.1:9464" in result.stderr
