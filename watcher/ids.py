"""Validation of thread, run and step IDs before they reach a URL."""

from __future__ import annotations

import re

__all__ = ["ID_PATTERN", "InvalidIdError", "check_id", "is_valid_id"]

#: A plain token: letters, digits, `_` and `-`; 1 to 128 characters.
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")


class InvalidIdError(ValueError):
    """An ID that is not a plain token."""


def is_valid_id(value: object) -> bool:
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def check_id(value: object, what: str) -> str:
    """Return `value` if it is a plain token, else raise `InvalidIdError` naming `what`."""
    if not is_valid_id(value):
        raise InvalidIdError(
            f"{what}: {value!r} is not a valid ID (letters, digits, '_' and '-' only)"
        )
    assert isinstance(value, str)
    return value
