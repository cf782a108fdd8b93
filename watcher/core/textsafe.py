"""Text from the API (or from a webhook receiver) made safe to show a person.

Control characters (escape sequences, newlines, bidi overrides) are shown as visible
escapes such as `\\x1b`, never sent raw to a terminal; `markup` also escapes rich markup, so
a tool name such as `[/oops]` is shown as it is, never read as a style tag. Pure functions.
"""

from __future__ import annotations

from rich.markup import escape

__all__ = ["markup", "visible"]


def _escaped(ch: str) -> str:
    code = ord(ch)
    if ch in "\n\r\t":
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch]
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def visible(value: object) -> str:
    """`value` as text, every non-printable character (C0/C1 controls, DEL, format
    characters such as bidi overrides, separators other than the space) as an escape."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escaped(ch) for ch in text)


def markup(value: object) -> str:
    """`visible(value)`, with rich markup escaped: for strings rich renders as markup."""
    return escape(visible(value))
