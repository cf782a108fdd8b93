"""Reading the settings: TOML file, environment, flags and secret files → `Settings`.

Precedence: flags > environment > file > defaults. Every error is one line naming its
field. Nothing else in the package reads the environment: `load_settings` receives it.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from watcher.config.api_settings import CREDENTIAL_API_KEY, DEFAULT_BASE_URL
from watcher.config.settings import (
    ConfigError,
    Settings,
    WatchSpec,
)
from watcher.core.urls import mask_url

__all__ = ["load_settings", "with_watches"]


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def _read_secret(path: Path, field: str) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{field}: cannot read {str(path)!r}: {exc.strerror}") from None
    if not value:
        raise ConfigError(f"{field}: {str(path)!r} is empty")
    return value


def _section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.setdefault(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{name}: must be a table ([{name}])")
    return value


def _overlay_secret(
    raw: dict[str, Any],
    env: Mapping[str, str],
    *,
    section: str,
    key: str,
    env_name: str,
    credential: str,
) -> None:
    """A section's secret: $ENV > `key` / `key_file` in the file > the systemd credential.

    Only for a section present in the file; a configured `<key>_file` must be readable.
    """
    if section not in raw:
        return
    table = _section(raw, section)
    file_key = f"{key}_file"
    from_file = (
        _read_secret(Path(str(table[file_key])), f"{section}.{file_key}")
        if table.get(file_key)
        else None
    )
    if env.get(env_name):
        table[key] = env[env_name]
    elif from_file and not table.get(key):
        table[key] = from_file
    elif not table.get(key) and env.get("CREDENTIALS_DIRECTORY"):
        cred = Path(env["CREDENTIALS_DIRECTORY"]) / credential
        if cred.exists():
            table[key] = _read_secret(cred, f"$CREDENTIALS_DIRECTORY/{credential}")


def _env_proxy(base_url: str, env: Mapping[str, str]) -> str | None:
    """The proxy the environment gives for the API (`HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`,
    either case), as curl, httpx and the SDKs read them."""
    proxies = {
        name.lower().removesuffix("_proxy"): value
        for name, value in env.items()
        if name.lower().endswith("_proxy") and value
    }
    parts = urlsplit(base_url)
    if not proxies or _bypassed(parts.hostname or "", proxies.get("no", "")):
        return None
    return proxies.get(parts.scheme) or proxies.get("all")


def _bypassed(host: str, no_proxy: str) -> bool:
    """`NO_PROXY`: `*`, or hosts and domains (`example.com` also covers its subdomains)."""
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if entry.count(":") == 1:  # host:port (an IPv6 address has more colons)
            entry = entry.split(":")[0]
        entry = entry.lstrip(".")
        if entry == "*" or (entry and (host == entry or host.endswith("." + entry))):
            return True
    return False


def _overlay(raw: dict[str, Any], env: Mapping[str, str], flags: Mapping[str, Any]) -> None:
    api = _section(raw, "api")
    if "api_key" in api:
        raise ConfigError(
            "api.api_key: secrets do not belong in the config file; "
            "use api_key_file or $OPENAI_API_KEY"
        )
    # environment over file
    if env.get("OPENAI_BASE_URL"):
        api["base_url"] = env["OPENAI_BASE_URL"]
    proxy = _env_proxy(str(api.get("base_url", DEFAULT_BASE_URL)), env)
    if proxy:
        api["proxy"] = proxy
    if env.get("OPENAI_ORG_ID"):
        api["organization"] = env["OPENAI_ORG_ID"]
    if env.get("OPENAI_PROJECT_ID"):
        api["project"] = env["OPENAI_PROJECT_ID"]
    # a configured key file must be readable even when the environment's key wins
    from_file = (
        _read_secret(Path(str(api["api_key_file"])), "api.api_key_file")
        if api.get("api_key_file")
        else None
    )
    if env.get("OPENAI_API_KEY"):
        api["api_key"] = env["OPENAI_API_KEY"]
    elif from_file:
        api["api_key"] = from_file
    elif env.get("CREDENTIALS_DIRECTORY"):
        cred = Path(env["CREDENTIALS_DIRECTORY"]) / CREDENTIAL_API_KEY
        if cred.exists():
            api["api_key"] = _read_secret(cred, f"$CREDENTIALS_DIRECTORY/{CREDENTIAL_API_KEY}")
    _overlay_secret(
        raw,
        env,
        section="webhook",
        key="secret",
        env_name="RUNSTEP_WATCHER_WEBHOOK_SECRET",
        credential="webhook-secret",
    )
    _overlay_secret(
        raw,
        env,
        section="http",
        key="token",
        env_name="RUNSTEP_WATCHER_HTTP_TOKEN",
        credential="http-token",
    )
    state = _section(raw, "state")
    if "password" in state:
        raise ConfigError(
            "state.password: secrets do not belong in the config file; "
            "use password_file, $PGPASSWORD or the state-password credential"
        )
    if state.get("url"):
        _overlay_secret(
            raw,
            env,
            section="state",
            key="password",
            env_name="PGPASSWORD",
            credential="state-password",
        )
    elif "path" not in state and env.get("STATE_DIRECTORY"):
        # systemd may pass several colon-separated directories: the first is ours
        state["path"] = str(Path(env["STATE_DIRECTORY"].split(":")[0]) / "state.db")
    if env.get("RUNSTEP_WATCHER_LOG_LEVEL"):
        _section(raw, "log")["level"] = env["RUNSTEP_WATCHER_LOG_LEVEL"].lower()
    # flags over everything
    for dotted, value in flags.items():
        if value is None:
            continue
        section, key = dotted.split(".", 1)
        _section(raw, section)[key] = value
        if dotted == "state.path":  # `--state FILE` (or `watch`'s memory): SQLite, whatever url
            _section(raw, "state").pop("url", None)


def _describe(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    parts: list[str] = []
    for item in err["loc"]:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        elif item not in ("function-after",) and not str(item).startswith("function-"):
            parts.append(str(item))
    field = ".".join(parts) or "config"
    msg = str(err["msg"]).removeprefix("Value error, ")
    sub = re.match(r"([a-z_]+): (.*)", msg)
    if sub and err["type"] == "value_error":  # a model check naming its own key
        field, msg = f"{field}.{sub[1]}", sub[2]
    if err["type"] == "extra_forbidden":
        return f"{field}: unknown key (check its spelling)"
    if err["type"] == "missing":
        return f"{field}: required"
    shown = err.get("input")
    if isinstance(shown, str) and field.endswith("url"):
        shown = mask_url(shown)  # a password or a token in its query: never echoed
    if (
        any(w in field for w in ("key", "secret", "token", "proxy", "headers", "query"))
        or isinstance(shown, dict | list)
        or shown is None
        or repr(shown) in msg
    ):
        return f"{field}: {msg}"
    return f"{field}: {msg} (got {shown!r})"


def load_settings(
    path: Path | None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
    *,
    require_key: bool = True,
) -> Settings:
    """Build the settings; raise `ConfigError` with one line naming the field.

    `require_key=False` for commands that never call the API (`outbox`).
    """
    env = os.environ if env is None else env
    raw: dict[str, Any] = _read_toml(path) if path is not None else {}
    _overlay(raw, env, flags or {})
    try:
        return Settings.model_validate(raw, context={"require_key": require_key})
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def with_watches(settings: Settings, specs: Sequence[Mapping[str, str]]) -> Settings:
    """The settings with these watches instead (`watch` and `demo` build theirs this way)."""
    try:
        watches = tuple(WatchSpec.model_validate(dict(s)) for s in specs)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    return settings.model_copy(update={"watch": watches})
