"""Secrets in URLs and headers are masked; webhook targets and tokens that expose the host
are refused (exit 78, one line naming the field). Through `check-config` as a process."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli import run_cli

KEY = "sk-exposure-SECRET-abcdef123456"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SECRETS = ("pa55-base", "qtoken-api", "htoken-api", "pa55-hook", "qtoken-hook", "htoken-hook")


def check(tmp_path: Path, text: str):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    return run_cli("check-config", "--config", str(cfg), OPENAI_API_KEY=KEY)


def test_check_config_masks_url_passwords_query_values_and_header_values(tmp_path):
    result = check(
        tmp_path,
        f"""
[api]
base_url = "https://bob:pa55-base@api.example/v1"
query = {{ "api-key" = "qtoken-api" }}
headers = {{ "X-Api-Token" = "htoken-api" }}
[webhook]
url = "https://hook:pa55-hook@hooks.example/in?sig=qtoken-hook"
secret = "{WHSEC}"
headers = {{ "X-Hook-Token" = "htoken-hook" }}
""",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    assert not [s for s in SECRETS if s in out]
    assert "https://bob:**********@api.example/v1" in out
    assert "https://hook:**********@hooks.example/in?sig=**********" in out
    assert '"X-Api-Token": "**********"' in out and '"api-key": "**********"' in out


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("api.base_url", '[api]\nbase_url = "ftp://bob:pa55-base@api.example/v1"\n'),
        (
            "webhook.url",
            f'[webhook]\nurl = "ftp://hook:pa55-hook@x/?t=qtoken-hook"\nsecret = "{WHSEC}"\n',
        ),
    ],
)
def test_errors_never_echo_url_passwords(tmp_path, field, text):
    result = check(tmp_path, text)
    assert result.returncode == 78
    assert field in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not [s for s in SECRETS if s in result.stderr]


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://2852039166/",  # 169.254.169.254 spelled as one number
        "http://[fd00:ec2::254]/",
        "http://[fe80::1%25eth0]/",
        "http://metadata.google.internal/computeMetadata/v1/",
    ],
)
def test_webhook_to_link_local_or_metadata_is_refused(tmp_path, url):
    hook = f'[webhook]\nurl = "{url}"\nsecret = "{WHSEC}"\nallow_insecure_http = true\n'
    refused = check(tmp_path, hook)
    assert refused.returncode == 78, refused.stdout
    assert refused.stderr.count("\n") == 1 and "webhook.url" in refused.stderr
    assert "allow_private_targets" in refused.stderr


def test_webhook_to_metadata_allowed_when_asked(tmp_path):
    hook = (
        '[webhook]\nurl = "http://169.254.169.254/hook"\n'
        f'secret = "{WHSEC}"\nallow_insecure_http = true\nallow_private_targets = true\n'
    )
    assert check(tmp_path, hook).returncode == 0


@pytest.mark.parametrize(
    ("listen", "token", "code"),
    [
        ("0.0.0.0:9464", "short-token-15c", 78),
        ("0.0.0.0:9464", "long-enough-16ch", 0),
        ("127.0.0.1:9464", "short", 0),  # loopback: any token
    ],
)
def test_short_tokens_refused_beyond_loopback(tmp_path, listen, token, code):
    result = check(tmp_path, f'[http]\nlisten = "{listen}"\ntoken = "{token}"\n')
    assert result.returncode == code, result.stderr
    if code:
        assert "http.token" in result.stderr and "16" in result.stderr
        assert token not in result.stderr
