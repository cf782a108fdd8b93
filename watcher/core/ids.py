"""Validation of thread, run and step IDs before they reach a URL."""

from __future__ import annotations

import re

__all__ = ["ID_PATTERN", "is_valid_id"]

#: A plain token: letters, digits, `_` and `-`; 1 to 128 characters.
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")


def is_valid_id(value: object) -> bool:
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None
