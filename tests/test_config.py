"""One validated config: precedence, every error naming its field, exit 78 from the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli import run_cli
from watcher.config.config_file import load_settings
from watcher.config.settings import ConfigError

KEY = "sk-config-SECRET-abcdef123456"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_defaults_and_file(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    cfg = write(
        tmp_path,
        f"""
[api]
base_url = "https://example.test/v1/"
api_key_file = "{key_file}"
timeout = 12.5
[poll]
interval = 2.0
[[watch]]
thread_id = "thread_abc"
run_id = "run_abc"
[[watch]]
thread_id = "thread_xyz"
include = ["step_details.tool_calls[*].file_search.results[*].content"]
""",
    )
    s = load_settings(cfg, {})
    assert s.api.base_url == "https://example.test/v1"
    assert s.api.api_key is not None and s.api.api_key.get_secret_value() == KEY
    assert s.api.timeout == 12.5
    assert s.poll.interval == 2.0 and s.poll.max_interval == 30.0
    assert [(w.thread_id, w.run_id) for w in s.watch] == [
        ("thread_abc", "run_abc"),
        ("thread_xyz", None),
    ]
    assert s.watch[1].include == ("step_details.tool_calls[*].file_search.results[*].content",)


def test_precedence_flags_over_env_over_file(tmp_path):
    cfg = write(tmp_path, '[api]\nbase_url = "https://file.test/v1"\n')
    env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": "https://env.test/v1"}
    assert load_settings(cfg, env).api.base_url == "https://env.test/v1"
    flags = {"api.base_url": "https://flag.test/v1"}
    assert load_settings(cfg, env, flags).api.base_url == "https://flag.test/v1"
    assert load_settings(cfg, {"OPENAI_API_KEY": KEY}).api.base_url == "https://file.test/v1"


def test_env_org_project_state_directory_and_credentials(tmp_path):
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "openai-api-key").write_text(KEY)
    env = {
        "OPENAI_ORG_ID": "org_1",
        "OPENAI_PROJECT_ID": "proj_1",
        "STATE_DIRECTORY": "/var/lib/runstep-watcher",
        "CREDENTIALS_DIRECTORY": str(creds),
    }
    s = load_settings(None, env)
    assert (s.api.organization, s.api.project) == ("org_1", "proj_1")
    assert str(s.state.path) == "/var/lib/runstep-watcher/state.db"
    assert s.api.api_key is not None and s.api.api_key.get_secret_value() == KEY


PROXY = "http://user:PROXY-PASSWORD@proxy.example:3128"


@pytest.mark.parametrize(
    ("env", "proxy"),
    [
        ({"HTTPS_PROXY": PROXY}, PROXY),
        ({"https_proxy": PROXY, "HTTP_PROXY": "http://other:1"}, PROXY),
        ({"ALL_PROXY": PROXY}, PROXY),
        ({"HTTP_PROXY": PROXY}, None),  # the API is https: HTTP_PROXY is not for it
        ({"HTTPS_PROXY": PROXY, "NO_PROXY": "localhost,.openai.com"}, None),
        ({"HTTPS_PROXY": PROXY, "no_proxy": "api.openai.com:443"}, None),
        ({"HTTPS_PROXY": PROXY, "NO_PROXY": "*"}, None),
        ({"HTTPS_PROXY": PROXY, "NO_PROXY": "openai.co"}, PROXY),
        ({}, None),
    ],
)
def test_proxy_from_the_environment(env, proxy):
    settings = load_settings(None, {"OPENAI_API_KEY": KEY, **env})
    got = settings.api.proxy.get_secret_value() if settings.api.proxy else None
    assert got == proxy


def test_proxy_password_is_never_shown(tmp_path):
    cfg = write(tmp_path, '[[watch]]\nthread_id = "thread_1"\n')
    result = run_cli("check-config", "--config", str(cfg), OPENAI_API_KEY=KEY, HTTPS_PROXY=PROXY)
    assert result.returncode == 0, result.stderr
    assert '"proxy": "**********"' in result.stdout
    assert "PROXY-PASSWORD" not in result.stdout + result.stderr


def test_a_bad_proxy_url_is_named_but_its_password_never_shown(tmp_path):
    cfg = write(tmp_path, '[api]\nproxy = "ftp://user:PROXY-PASSWORD@p.example:21"\n')
    result = run_cli("check-config", "--config", str(cfg), OPENAI_API_KEY=KEY)
    assert result.returncode == 78
    assert "api.proxy" in result.stderr
    assert "PROXY-PASSWORD" not in result.stdout + result.stderr


def test_loopback_needs_no_key():
    assert load_settings(None, {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}).api.api_key is None


def test_masked_output_hides_the_key():
    s = load_settings(None, {"OPENAI_API_KEY": KEY})
    assert KEY not in str(s.masked())
    assert KEY not in repr(s)


BAD = [
    ("[poll]\ninterval = -1\n", "poll.interval"),
    ("[poll]\ninterval = 0\n", "poll.interval"),
    ("[poll]\nintervl = 1\n", "poll.intervl: unknown key"),
    ("[poll]\ninterval = 5.0\nmax_interval = 1.0\n", "max_interval"),
    ('[api]\ntimeout = "soon"\n', "api.timeout"),
    ('[api]\nbase_url = "ftp://x"\n', "api.base_url"),
    ('[api]\napi_key = "sk-inline"\n', "api.api_key"),
    ('[api]\napi_key_file = "/nonexistent/key"\n', "api.api_key_file"),
    ('[[watch]]\nrun_id = "run_1"\n', "watch[0].thread_id: required"),
    ('[[watch]]\nthread_id = "../etc"\n', "watch[0].thread_id"),
    ('[[watch]]\nthread_id = "t"\nrun_id = "r?x=1"\n', "watch[0].run_id"),
    ('[[watch]]\nthread_id = "t"\ncolour = 1\n', "watch[0].colour: unknown key"),
    ("[typo]\nx = 1\n", "typo: unknown key"),
    ("api = 3\n", "api: must be a table"),
    ("[poll\n", "invalid TOML"),
    ('[log]\nlevel = "loud"\n', "log.level"),
]


GOOD_WHSEC = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
HOOK = '[webhook]\nurl = "https://h.example/x"\n'
BAD += [
    ("[log]\nlevel = 3\n", "log.level"),
    ('[poll]\nmax_concurrency = "many"\n', "poll.max_concurrency"),
    ("[poll]\nmax_concurrency = 0\n", "poll.max_concurrency"),
    ("[poll]\nidle_after = -1\n", "poll.idle_after"),
    ("[poll]\nmax_requests_per_second = 0\n", "poll.max_requests_per_second"),
    ("[retry]\nattempts = 0\n", "retry.attempts"),
    ("[retry]\nattempts = 1.5\n", "retry.attempts"),
    ('[api]\nheaders = "x"\n', "api.headers"),
    ("[api]\nquery = [1]\n", "api.query"),
    ('[api]\napi_key_header = "bad header"\n', "api.api_key_header"),
    ('[api]\nbase_url = "https://x.example/v1?a=1"\n', "api.base_url"),
    ('[api]\nbase_url = "not a url"\n', "api.base_url"),
    ("[state]\npath = 3\n", "state.path"),
    ('watch = "x"\n', "watch"),
    ("[[watch]]\nthread_id = 5\n", "watch[0].thread_id"),
    ('[[watch]]\nthread_id = ""\n', "watch[0].thread_id"),
    ('[[watch]]\nthread_id = "t"\ninclude = 7\n', "watch[0].include"),
    ('[stdout]\nenabled = "yes please"\n', "stdout.enabled"),
    (HOOK + 'secret = "whsec_c2hvcnQ="\n', "webhook.secret"),
    (HOOK + 'secret = "not-a-whsec"\n', "webhook.secret"),
    (f'[webhook]\nurl = "http://h.example/x"\nsecret = "{GOOD_WHSEC}"\n', "webhook.url"),
    (f'[webhook]\nurl = "ftp://h.example/x"\nsecret = "{GOOD_WHSEC}"\n', "webhook.url"),
    (HOOK, "webhook.secret"),
    (f'[webhook]\nsecret = "{GOOD_WHSEC}"\n', "webhook.url"),
    (HOOK + f'secret = "{GOOD_WHSEC}"\nmax_age = -1\n', "webhook.max_age"),
    (HOOK + 'secret_file = "/nonexistent/s"\n', "webhook.secret_file"),
    ('[http]\nlisten = "nohostport"\n', "http.listen"),
    ('[http]\nlisten = "0.0.0.0:9464"\n', "http.token"),
    ('[http]\nlisten = "127.0.0.1:99999"\n', "http.listen"),
    ('[api]\nproxy = "ftp://p.example:21"\n', "api.proxy"),
    ('[api]\nproxy = "not a url"\n', "api.proxy"),
]


@pytest.mark.parametrize(("text", "field"), BAD)
def test_bad_config_names_the_field(tmp_path, text, field):
    with pytest.raises(ConfigError, match=None) as info:
        load_settings(write(tmp_path, text), {"OPENAI_API_KEY": KEY})
    assert field in str(info.value)
    assert "\n" not in str(info.value)
    assert KEY not in str(info.value)


def test_missing_key_for_a_remote_base_url():
    with pytest.raises(ConfigError, match="no API key"):
        load_settings(None, {})


@pytest.mark.parametrize(("text", "field"), BAD)
def test_cli_exits_78_with_one_line(tmp_path, text, field):
    cfg = write(tmp_path, text)
    result = run_cli("check-config", "--config", str(cfg), OPENAI_API_KEY=KEY)
    assert result.returncode == 78
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0]
    assert "Traceback" not in result.stderr
    assert KEY not in result.stderr


def test_check_config_prints_masked_settings(tmp_path):
    cfg = write(tmp_path, '[[watch]]\nthread_id = "thread_1"\n')
    result = run_cli("check-config", "--config", str(cfg), OPENAI_API_KEY=KEY)
    assert result.returncode == 0, result.stderr
    assert '"thread_id": "thread_1"' in result.stdout
    assert "**********" in result.stdout
    assert KEY not in result.stdout + result.stderr


def test_run_with_missing_file_exits_78(tmp_path):
    result = run_cli("run", "--config", str(tmp_path / "nope.toml"), OPENAI_API_KEY=KEY)
    assert result.returncode == 78
    assert "no such config file" in result.stderr


def test_watch_with_malformed_id_exits_78_before_any_request():
    # base URL on a closed port: any request would hang/err; 78 comes first
    result = run_cli("watch", "thread_1", "run/../x", OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    assert result.returncode == 78
    assert "run_id" in result.stderr


def test_version_and_help():
    assert run_cli("--version").stdout.startswith("runstep-watcher ")
    assert "watch" in run_cli("--help").stdout


def test_webhook_secret_and_http_token_sources(tmp_path):
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "webhook-secret").write_text(GOOD_WHSEC)
    (creds / "http-token").write_text("token-from-credential")
    cfg = write(tmp_path, '[webhook]\nurl = "https://h.example/x"\n[http]\n')
    env = {"OPENAI_API_KEY": KEY, "CREDENTIALS_DIRECTORY": str(creds)}
    s = load_settings(cfg, env)
    assert s.webhook is not None and s.webhook.secret[0].get_secret_value() == GOOD_WHSEC
    assert s.http is not None and s.http.token is not None
    assert s.http.token.get_secret_value() == "token-from-credential"
    other = "whsec_" + "b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC0xMjM0NTY="
    s = load_settings(
        cfg,
        {
            **env,
            "RUNSTEP_WATCHER_WEBHOOK_SECRET": other,
            "RUNSTEP_WATCHER_HTTP_TOKEN": "token-from-env",
        },
    )
    assert s.webhook is not None and s.webhook.secret[0].get_secret_value() == other
    assert s.http is not None and s.http.token is not None
    assert s.http.token.get_secret_value() == "token-from-env"
    assert "token-from-env" not in str(s.masked())


def test_http2_needs_its_extra(tmp_path):
    import importlib.util

    cfg = write(tmp_path, "[api]\nhttp2 = true\n")
    if importlib.util.find_spec("h2") is None:
        with pytest.raises(ConfigError, match=r"api\.http2: needs the h2 package"):
            load_settings(cfg, {"OPENAI_API_KEY": KEY})
    else:
        assert load_settings(cfg, {"OPENAI_API_KEY": KEY}).api.http2 is True
