"""The small family of API errors, sorted at the client boundary: retry or not."""

from __future__ import annotations

__all__ = [
    "ApiError",
    "AuthError",
    "BadResponseError",
    "NotFoundError",
    "PermanentError",
    "RateLimitedError",
    "TransientError",
]


class ApiError(Exception):
    """Any failed API call. The message never holds a secret."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TransientError(ApiError):
    """Worth retrying: 408, 409, 429, 5xx, timeouts, broken connections and bodies."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class RateLimitedError(TransientError):
    """429: every request pauses until the limit resets (limits are per organization)."""


class BadResponseError(TransientError):
    """A 2xx whose body is not the JSON we expect (a broken proxy, a cut connection)."""


class PermanentError(ApiError):
    """Retrying the same request will not help: 4xx other than 408/409/429."""


class AuthError(PermanentError):
    """401/403: the API key was refused."""


class NotFoundError(PermanentError):
    """404. `api_missing` when no call to the base URL has ever succeeded."""

    def __init__(self, message: str, *, status: int | None = 404, api_missing: bool) -> None:
        super().__init__(message, status=status)
        self.api_missing = api_missing
