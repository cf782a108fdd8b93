"""What every config section shares: frozen sections, plain ids, the error type."""

from __future__ import annotations

import ipaddress
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict

from watcher.core.ids import is_valid_id

__all__ = ["ConfigError", "RunId", "ThreadId", "is_loopback_url"]


class ConfigError(Exception):
    """A configuration problem, as one line naming the field. The CLI exits 78 on it."""


def _plain_id(value: str | None) -> str | None:
    if value is not None and not is_valid_id(value):
        raise ValueError(f"{value!r} is not a valid ID (letters, digits, '_' and '-' only)")
    return value


ThreadId = Annotated[str, AfterValidator(_plain_id)]
RunId = Annotated[str | None, AfterValidator(_plain_id)]


class _Section(BaseModel):
    # inf and nan are valid TOML, but no delay, age or rate of ours means them
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
