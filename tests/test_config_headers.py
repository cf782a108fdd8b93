"""Static headers (`[api] headers`, `[webhook] headers`) checked at start: exit 78 naming the
field, never a crash at the first request, never the value (it may be a credential)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli import run_cli

SECRET = "whsec_c29hay1zZWNyZXQtc29hay1zZWNyZXQtMTIzNDU2Nzg5MA=="


def config(tmp_path: Path, section: str, headers: str) -> Path:
    path = tmp_path / "c.toml"
    webhook = f'[webhook]\nurl = "http://127.0.0.1:9/hook"\nsecret = "{SECRET}"\n'
    if section == "webhook":
        webhook += f"headers = {headers}\n"
    api = f"headers = {headers}\n" if section == "api" else ""
    path.write_text(
        f'[api]\nbase_url = "http://127.0.0.1:9/v1"\n{api}{webhook}'
        '[[watch]]\nthread_id = "thread_a"\n'
    )
    return path


@pytest.mark.parametrize(
    ("section", "headers", "named"),
    [
        ("webhook", '{ "X-Token" = "cafÉ-SECRETVALUE" }', "webhook.headers"),
        ("webhook", '{ "X-Token" = "a\\r\\nX-Evil: SECRETVALUE" }', "webhook.headers"),
        ("webhook", '{ "X Token" = "SECRETVALUE" }', "webhook.headers"),
        ("webhook", '{ "Webhook-Id" = "SECRETVALUE" }', "webhook.headers"),
        ("webhook", '{ "webhook-signature" = "SECRETVALUE" }', "webhook.headers"),
        ("webhook", '{ "Content-Type" = "SECRETVALUE" }', "webhook.headers"),
        ("api", '{ "X-Token" = "cafÉ-SECRETVALUE" }', "api.headers"),
        ("api", '{ "X-Token" = "a\\nSECRETVALUE" }', "api.headers"),
    ],
)
def test_a_header_no_request_can_carry_is_a_config_error(tmp_path, section, headers, named):
    result = run_cli(
        "check-config", "--config", str(config(tmp_path, section, headers)), OPENAI_API_KEY="sk-x"
    )
    assert result.returncode == 78, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], result.stderr
    assert "SECRETVALUE" not in result.stderr + result.stdout


def test_plain_headers_are_fine(tmp_path):
    result = run_cli(
        "check-config",
        "--config",
        str(config(tmp_path, "webhook", '{ "X-Tenant" = "a b;c=1", "Authorization" = "Bearer" }')),
        OPENAI_API_KEY="sk-x",
    )
    assert result.returncode == 0, result.stderr
