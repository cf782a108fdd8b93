"""The settings: one validated, frozen object, its sections and their checks.

`[api]`, `[webhook]` and `[http]` are in `api_settings`, `webhook_settings` and
`http_settings`, a `[[watch]]` entry in `watch_spec`; all are importable from here.

`watcher.config.config_file` builds it from file + environment + flags; every error names its field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator

from watcher.config.api_settings import ApiSettings
from watcher.config.http_settings import HttpSettings
from watcher.config.section import (
    ConfigError,
    _Section,
    is_loopback_url,
)
from watcher.config.watch_spec import WatchSpec
from watcher.config.webhook_settings import WebhookSettings
from watcher.core.urls import MASK, mask_url

__all__ = [
    "ApiSettings",
    "ConfigError",
    "HttpSettings",
    "LogSettings",
    "PollSettings",
    "RetrySettings",
    "Settings",
    "StateSettings",
    "WatchSpec",
    "WebhookSettings",
    "is_loopback_url",
]

MAX_CONCURRENCY = 1000  # [poll] max_concurrency's upper bound


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
