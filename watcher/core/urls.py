"""URLs: secrets masked for display, and addresses a webhook must not reach. Pure.

A URL may carry a password (`https://user:pw@host`) or a token in its query string; shown
to a person (check-config, an error line) both are masked like the API key. A webhook URL
that points at a link-local address or a cloud metadata service would let whoever writes
the config (or an event body's receiver) read instance credentials: refused by default.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import parse_qsl, urlsplit, urlunsplit

__all__ = ["MASK", "is_metadata_or_link_local", "mask_url"]

MASK = "**********"

_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog", "metadata"})
_METADATA_IPS = frozenset({ipaddress.ip_address("fd00:ec2::254")})


def mask_url(url: str) -> str:
    """`url` with its password and every query value replaced by `MASK`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return MASK  # not a URL we can take apart: show none of it
    netloc = parts.netloc
    if parts.password is not None:
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        netloc = f"{parts.username or ''}:{MASK}@{host}" + (f":{port}" if port else "")
    query = parts.query
    if query:
        query = "&".join(f"{k}={MASK}" for k, _ in parse_qsl(query, keep_blank_values=True))
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address `host` names without DNS: dotted, IPv6, or the shorthand forms
    (`2852039166`, `0xa9.254.169.254`) that the C library accepts as IPv4."""
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def is_metadata_or_link_local(url: str) -> bool:
    """Whether `url`'s host is link-local (169.254.0.0/16, fe80::/10) or a cloud metadata
    service (`fd00:ec2::254`, `metadata.google.internal`). Names are not resolved."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host in _METADATA_HOSTS:
        return True
    addr = _address(host)
    return addr is not None and (addr.is_link_local or addr in _METADATA_IPS)
