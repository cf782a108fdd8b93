"""`[api]`: where the API is, its key, and how the client talks to it."""

from __future__ import annotations

import importlib.util
import unicodedata
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from watcher.config.http_headers import ApiHeaders
from watcher.config.section import _Section, is_loopback_url

__all__ = ["CREDENTIAL_API_KEY", "DEFAULT_BASE_URL", "ApiSettings"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
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
    headers: ApiHeaders = Field(default_factory=dict)
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
