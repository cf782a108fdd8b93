"""`[http]`: the control API's listen address, token and limits."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator

from watcher.config.section import _Section, is_loopback_url

__all__ = ["MIN_TOKEN_LENGTH", "HttpSettings"]

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
