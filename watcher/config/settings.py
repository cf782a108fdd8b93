"""The settings: one validated, frozen object, its sections and their checks.

`watcher.config.config_file` builds it from file + environment + flags; every error names its field.
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import unicodedata
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from watcher.config.section import (
    ConfigError,
    _Section,
    is_loopback_url,
)
from watcher.config.watch_spec import WatchSpec
from watcher.core.urls import MASK, is_metadata_or_link_local, mask_url

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
]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
MAX_CONCURRENCY = 1000  # [poll] max_concurrency's upper bound
CREDENTIAL_API_KEY = "openai-api-key"


class ApiSettings(_Section):
    base_url: str = DEFAULT_BASE_URL
    api_key: SecretStr | None = None
    api_key_file: Path | None = None
    api_key_header: str = "Authorization"
    organization: str | None = None
    project: str | None = None
    timeout: float = Field(30.0, gt=0)
    #: A page of 100 steps with `include[]` file-search content fits several times over.
    max_response_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, str] = Field(default_factory=dict)
    http2: bool = False
    proxy: SecretStr | None = None  # may hold a password; from $HTTPS_PROXY & co. by default

    @field_validator("api_key")
    @classmethod
    def _api_key(cls, value: SecretStr | None) -> SecretStr | None:
        """Stripped (a key file's or a Secret's trailing newline); no control characters left
        in it, or every request would fail and its error would carry the key."""
        if value is None:
            return None
        key = value.get_secret_value().strip()
        if not key:
            raise ValueError("is empty")
        if any(unicodedata.category(c) == "Cc" for c in key):
            raise ValueError("holds control characters (the key is not shown)")
        return SecretStr(key)

    @field_validator("proxy")
    @classmethod
    def _proxy(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in ("http", "https", "socks5", "socks5h") or not parts.hostname:
            raise ValueError("must be an http://, https:// or socks5:// URL with a host")
        if parts.scheme.startswith("socks") and importlib.util.find_spec("socksio") is None:
            raise ValueError("a socks5 proxy needs the socksio package: pip install 'httpx[socks]'")
        return value

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
    max_requests_per_second: float | None = Field(None, gt=0)  # a ceiling; None: the server's
    max_concurrency: int = Field(8, ge=1, le=MAX_CONCURRENCY)
    include: tuple[str, ...] = ()
    #: Pages of 100 one poll lists at most; a longer list carries on at the next poll.
    max_pages: int = Field(10, ge=1, le=10000)

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
    allow_private_targets: bool = False  # link-local and cloud metadata addresses
    schedule: tuple[float, ...] = STANDARD_SCHEDULE
    max_concurrency: int = Field(8, ge=1, le=256)
    # the body: our event line, or OpenAI's webhook event (watcher.core.webhook_openai)
    format: Literal["runstep-watcher", "openai"] = "runstep-watcher"

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
            raise ValueError(f"url: must be an https:// URL (got {mask_url(self.url)!r})")
        if is_metadata_or_link_local(self.url) and not self.allow_private_targets:
            raise ValueError(
                "url: a link-local or cloud metadata address is refused "
                "(allow_private_targets = true allows it)"
            )
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


MIN_TOKEN_LENGTH = 16  # beyond loopback


class HttpSettings(_Section):
    listen: str = "127.0.0.1:9464"
    token: SecretStr | None = None
    token_file: Path | None = None
    allowed_hosts: tuple[str, ...] = ()  # Host names accepted besides the listen address
    max_watches: int = Field(10_000, ge=1)
    max_connections: int = Field(100, ge=1, le=100_000)
    header_timeout: float = Field(10.0, gt=0)

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for host in value:
            if not host or any(c in host for c in "/@ ?#") or not host.isprintable():
                raise ValueError(f"{host!r} is not a host name (no scheme, path or port)")
        return tuple(h.lower().strip("[]") for h in value)

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
        if (
            self.token is not None
            and len(self.token.get_secret_value()) < MIN_TOKEN_LENGTH
            and not is_loopback_url(f"http://{self.listen}")
        ):
            raise ValueError(
                f"token: must be at least {MIN_TOKEN_LENGTH} characters "
                "when listening beyond loopback"
            )
        return self


class StdoutSettings(_Section):
    enabled: bool = True


class StateSettings(_Section):
    path: Path = Path("runstep-watcher.db")
    retention: float = Field(604800.0, gt=0)  # seconds a finished run is kept (7 days)
    # PostgreSQL instead of the SQLite file (`path`): postgresql://user@host/db
    url: str | None = None
    password: SecretStr | None = None  # from password_file, $PGPASSWORD or a credential
    password_file: Path | None = None
    # replicas on one PostgreSQL database: seconds a replica's lease on a watch lasts
    # unless renewed; after a replica dies, its watches are taken over within about this
    lease: float = Field(15.0, gt=0)

    @model_validator(mode="after")
    def _one_backend(self) -> StateSettings:
        if self.url is None:
            return self
        parts = urlsplit(self.url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError(f"url: must be a postgresql:// URL (got {mask_url(self.url)!r})")
        if parts.password is not None:
            raise ValueError(
                "url: a password does not belong in the URL; use password_file, "
                "$PGPASSWORD or the state-password credential"
            )
        if "path" in self.model_fields_set:
            raise ValueError("path: set either path (SQLite) or url (PostgreSQL), not both")
        return self


class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"


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
        """The resolved settings as plain data, secrets shown as `**********`: the key,
        passwords in URLs, query values, and header values."""
        data = self.model_dump(mode="json")
        for section in (data["api"], data["webhook"]):
            if section is None:
                continue
            for key in ("base_url", "url"):
                if key in section:
                    section[key] = mask_url(section[key])
            section["headers"] = dict.fromkeys(section["headers"], MASK)
        data["api"]["query"] = dict.fromkeys(data["api"]["query"], MASK)
        if data["state"]["url"] is not None:
            data["state"]["url"] = mask_url(data["state"]["url"])
        return data
