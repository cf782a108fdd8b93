"""Lone UTF-16 surrogates in parsed JSON, replaced by U+FFFD (pure: no I/O).

`"\\ud83d"` alone is valid JSON (RFC 8259 leaves its meaning open) but no Unicode scalar
value: Python's `json` keeps it as a surrogate code point, which SQLite, stdout and a
webhook body (all UTF-8) refuse. A server that cuts text by UTF-16 units makes one out of
an emoji. Like Go's `encoding/json`, the answer is kept with U+FFFD in its place; a valid
pair (`"\\ud83d\\ude00"`) is one character already and is left alone.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["may_hold_surrogates", "replace_lone_surrogates"]

_LONE = re.compile("[\ud800-\udfff]")
#: A `\uD800`-`\uDFFF` escape in the raw JSON: the only way a surrogate gets into the result.
_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def may_hold_surrogates(raw: bytes) -> bool:
    """Whether parsing `raw` may give a lone surrogate (cheap: most answers hold none)."""
    return _ESCAPE.search(raw) is not None


def replace_lone_surrogates(value: Any) -> Any:
    """`value` with every lone surrogate in its strings (keys too) replaced by U+FFFD."""
    if isinstance(value, str):
        return _LONE.sub("\ufffd", value)
    if isinstance(value, list):
        return [replace_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {replace_lone_surrogates(k): replace_lone_surrogates(v) for k, v in value.items()}
    return value
