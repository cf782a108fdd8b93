"""Secrets out of text: the secret itself and the escaped forms it takes in messages.

A key ending in a newline shows up as `sk-…\\n` in a `repr`, as `b'Bearer sk-…\\n'` in an
httpx error, as `sk-…\\u000a` in JSON: each form is replaced, not only the raw one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import quote

__all__ = ["MASK", "forms", "scrub"]

MASK = "***"


def _escapes(text: str) -> list[str]:
    return [
        text,
        repr(text)[1:-1],
        json.dumps(text)[1:-1],
        json.dumps(text, ensure_ascii=False)[1:-1],
        repr(text.encode("utf-8", "backslashreplace"))[2:-1],
        quote(text, safe=""),
    ]


def forms(secret: str) -> list[str]:
    """Every way `secret` may be written in a message, escaped once or twice, longest first."""
    once = _escapes(secret)
    found = {f for form in once for f in _escapes(form) if f}
    return sorted(found, key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every form of every secret replaced by `***`."""
    for secret in secrets:
        if secret:
            for form in forms(secret):
                if form in text:
                    text = text.replace(form, MASK)
    return text
