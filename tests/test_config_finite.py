"""Numbers in the config are finite: `inf` and `nan` (valid TOML) are refused with exit 78
naming the field. Before, a `nan` in `[webhook] schedule` reached the outbox (SQLite stores
NaN as NULL: the delivery could not be rescheduled) and `inf` meant "never"."""

from __future__ import annotations

import pytest

from tests.cli import run_cli

SECRET = "whsec_c29hay1zZWNyZXQtc29hay1zZWNyZXQtMTIzNDU2Nzg5MA=="
WEBHOOK = f'[webhook]\nurl = "https://hooks.example/x"\nsecret = "{SECRET}"\n'


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (WEBHOOK + "schedule = [0, nan]", "webhook.schedule"),
        (WEBHOOK + "schedule = [0, inf]", "webhook.schedule"),
        (WEBHOOK + "max_age = inf", "webhook.max_age"),
        (WEBHOOK + "timeout = inf", "webhook.timeout"),
        ("[poll]\nmax_interval = inf", "poll.max_interval"),
        ("[poll]\nmax_requests_per_second = inf", "poll.max_requests_per_second"),
        ("[api]\ntimeout = inf", "api.timeout"),
        ("[retry]\nauth_backoff = inf", "retry.auth_backoff"),
    ],
)
def test_inf_and_nan_are_config_errors(tmp_path, text, field):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text + '\n[[watch]]\nthread_id = "thread_a"\n')
    result = run_cli("check-config", "--config", str(cfg), OPENAI_API_KEY="sk-x")
    assert result.returncode == 78, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0], result.stderr
