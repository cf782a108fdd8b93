"""Secrets in URLs and headers are masked; webhook targets and tokens that expose the host
are refused (exit 78, one line naming the field). Through `check-config` as a process."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli import run_cli
from watcher.config.config_file import load_settings
from watcher.config.settings import ConfigError

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
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, {"OPENAI_API_KEY": KEY})
    assert str(err.value).startswith(field)
    assert not [s for s in SECRETS if s in str(err.value)]


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://2852039166/",  # 169.254.169.254 spelled as one number
        "http://0xa9.254.169.254/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fd00:ec2::254]/",
        "http://[fe80::1%25eth0]/",
        "http://metadata.google.internal./computeMetadata/v1/",
    ],
)
def test_webhook_to_link_local_or_metadata_is_refused(tmp_path, url):
    hook = f'[webhook]\nurl = "{url}"\nsecret = "{WHSEC}"\nallow_insecure_http = true\n'
    cfg = tmp_path / "c.toml"
    cfg.write_text(hook)
    with pytest.raises(ConfigError, match="allow_private_targets") as err:
        load_settings(cfg, {"OPENAI_API_KEY": KEY})
    assert str(err.value).startswith("webhook.url: ")
    cfg.write_text(hook + "allow_private_targets = true\n")
    assert load_settings(cfg, {"OPENAI_API_KEY": KEY}).webhook is not None


def test_cli_refuses_a_metadata_webhook_and_a_short_token_with_78(tmp_path):
    hook = f'[webhook]\nurl = "http://169.254.169.254/"\nsecret = "{WHSEC}"\n'
    refused = check(tmp_path, hook + "allow_insecure_http = true\n")
    assert refused.returncode == 78, refused.stdout
    assert refused.stderr.count("\n") == 1 and "webhook.url" in refused.stderr
    short = check(tmp_path, '[http]\nlisten = "0.0.0.0:9464"\ntoken = "short-token-15c"\n')
    assert short.returncode == 78
    assert "http.token" in short.stderr and "16" in short.stderr
    assert "short-token-15c" not in short.stderr


@pytest.mark.parametrize(
    ("listen", "token", "ok"),
    [
        ("0.0.0.0:9464", "short-token-15c", False),
        ("[::]:9464", "short-token-15c", False),
        ("0.0.0.0:9464", "long-enough-16ch", True),
        ("127.0.0.1:9464", "short", True),  # loopback: any token
    ],
)
def test_short_tokens_refused_beyond_loopback(tmp_path, listen, token, ok):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[http]\nlisten = "{listen}"\ntoken = "{token}"\n')
    if ok:
        assert load_settings(cfg, {"OPENAI_API_KEY": KEY}).http is not None
    else:
        with pytest.raises(ConfigError, match="at least 16 characters"):
            load_settings(cfg, {"OPENAI_API_KEY": KEY})
