"""One validated, frozen settings object, built once from file + environment + flags.

Precedence: flags > environment > file > defaults. Every error names its field. Nothing
else in the package reads the environment; `load_settings` receives it as a mapping.
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from watcher.ids import is_valid_id

__all__ = [
    "ApiSettings",
    "ConfigError",
    "LogSettings",
    "PollSettings",
    "RetrySettings",
    "Settings",
    "StateSettings",
    "WatchSpec",
    "is_loopback_url",
    "load_settings",
    "with_watches",
]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
CREDENTIAL_API_KEY = "openai-api-key"


class ConfigError(Exception):
    """A configuration problem, as one line naming the field. The CLI exits 78 on it."""


def _plain_id(value: str | None) -> str | None:
    if value is not None and not is_valid_id(value):
        raise ValueError(f"{value!r} is not a valid ID (letters, digits, '_' and '-' only)")
    return value


ThreadId = Annotated[str, AfterValidator(_plain_id)]
RunId = Annotated[str | None, AfterValidator(_plain_id)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ApiSettings(_Section):
    base_url: str = DEFAULT_BASE_URL
    api_key: SecretStr | None = None
    api_key_file: Path | None = None
    api_key_header: str = "Authorization"
    organization: str | None = None
    project: str | None = None
    timeout: float = Field(30.0, gt=0)
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, str] = Field(default_factory=dict)
    http2: bool = False

    @field_validator("http2")
    @classmethod
    def _h2(cls, value: bool) -> bool:
        if value and importlib.util.find_spec("h2") is None:
            raise ValueError("needs the h2 package: pip install 'runstep-watcher[http2]'")
        return value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.query or parts.fragment:
            raise ValueError("must have no query or fragment (use [api] query for parameters)")
        return value.rstrip("/")

    @field_validator("api_key_header")
    @classmethod
    def _header(cls, value: str) -> str:
        if not value or not value.replace("-", "").isalnum():
            raise ValueError("must be an HTTP header name such as 'Authorization' or 'api-key'")
        return value

    @model_validator(mode="after")
    def _key_needed(self, info: ValidationInfo) -> ApiSettings:
        needed = (info.context or {}).get("require_key", True)
        if needed and self.api_key is None and not is_loopback_url(self.base_url):
            raise ValueError(
                "no API key: set OPENAI_API_KEY or [api] api_key_file "
                "(only a loopback base_url may go without one)"
            )
        return self


class PollSettings(_Section):
    interval: float = Field(1.0, gt=0)
    max_interval: float = Field(30.0, gt=0)
    idle_after: float = Field(10.0, ge=0)
    max_requests_per_second: float = Field(15.0, gt=0)
    max_concurrency: int = Field(8, ge=1, le=1000)
    include: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _order(self) -> PollSettings:
        if self.max_interval < self.interval:
            raise ValueError(
                f"max_interval ({self.max_interval}) must be >= interval ({self.interval})"
            )
        return self


class RetrySettings(_Section):
    attempts: int = Field(5, ge=1, le=100)
    initial_delay: float = Field(0.5, gt=0)
    max_delay: float = Field(30.0, gt=0)
    auth_backoff: float = Field(300.0, gt=0)


def _check_whsec(value: SecretStr) -> SecretStr:
    raw = value.get_secret_value()
    try:
        key = base64.b64decode(raw.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not raw.startswith("whsec_") or not 24 <= len(key) <= 64:
        raise ValueError("must be 'whsec_' followed by the base64 of 24 to 64 bytes")
    return value


WebhookSecret = Annotated[SecretStr, AfterValidator(_check_whsec)]

#: Standard Webhooks' retry schedule: at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h.
STANDARD_SCHEDULE = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 50400.0, 72000.0, 86400.0)


class WebhookSettings(_Section):
    url: str
    secret: tuple[WebhookSecret, ...] = ()
    secret_file: Path | None = None
    timeout: float = Field(10.0, gt=0)
    max_age: float = Field(259200.0, gt=0)
    headers: dict[str, str] = Field(default_factory=dict)
    allow_insecure_http: bool = False
    schedule: tuple[float, ...] = STANDARD_SCHEDULE
    max_concurrency: int = Field(8, ge=1, le=256)

    @field_validator("secret", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return value.split() if isinstance(value, str) else value

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(v < 0 for v in value):
            raise ValueError("must be a non-empty list of delays in seconds, none negative")
        return value

    @model_validator(mode="after")
    def _url_and_secret(self) -> WebhookSettings:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url: must be an https:// URL (got {self.url!r})")
        if parts.scheme == "http" and not (is_loopback_url(self.url) or self.allow_insecure_http):
            raise ValueError(
                "url: https is required unless the host is loopback or allow_insecure_http = true"
            )
        if not self.secret:
            raise ValueError(
                "secret: required (secret, secret_file, $RUNSTEP_WATCHER_WEBHOOK_SECRET "
                "or the webhook-secret credential)"
            )
        return self


class HttpSettings(_Section):
    listen: str = "127.0.0.1:9464"
    token: SecretStr | None = None
    token_file: Path | None = None

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("must be HOST:PORT, e.g. 127.0.0.1:9464")
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @model_validator(mode="after")
    def _token_beyond_loopback(self) -> HttpSettings:
        if self.token is None and not is_loopback_url(f"http://{self.listen}"):
            raise ValueError(
                "token: required when listening beyond loopback (token, token_file, "
                "$RUNSTEP_WATCHER_HTTP_TOKEN or the http-token credential)"
            )
        return self


class StdoutSettings(_Section):
    enabled: bool = True


class StateSettings(_Section):
    path: Path = Path("runstep-watcher.db")


class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"


class WatchSpec(_Section):
    thread_id: ThreadId
    run_id: RunId = None
    include: tuple[str, ...] | None = None


class Settings(_Section):
    api: ApiSettings = Field(default_factory=lambda: ApiSettings())
    poll: PollSettings = Field(default_factory=lambda: PollSettings())
    retry: RetrySettings = Field(default_factory=lambda: RetrySettings())
    state: StateSettings = Field(default_factory=lambda: StateSettings())
    log: LogSettings = Field(default_factory=lambda: LogSettings())
    webhook: WebhookSettings | None = None
    http: HttpSettings | None = None
    stdout: StdoutSettings = Field(default_factory=lambda: StdoutSettings())
    watch: tuple[WatchSpec, ...] = ()

    def masked(self) -> dict[str, Any]:
        """The resolved settings as plain data, secrets shown as `**********`."""
        return self.model_dump(mode="json")


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
    if "path" not in state and env.get("STATE_DIRECTORY"):
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
    if (
        any(w in field for w in ("key", "secret", "token"))
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
