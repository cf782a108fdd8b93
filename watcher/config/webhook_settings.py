"""`[webhook]`: where signed events are POSTed, with which secrets, on which schedule."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator

from watcher.config.http_headers import WebhookHeaders
from watcher.config.section import _Section, is_loopback_url
from watcher.core.urls import is_metadata_or_link_local, mask_url

__all__ = ["STANDARD_SCHEDULE", "WebhookSecret", "WebhookSettings"]


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
    headers: WebhookHeaders = Field(default_factory=dict)
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
