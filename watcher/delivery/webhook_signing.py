"""Standard Webhooks signatures: the HMAC key of a `whsec_…` secret, and the signature
header of one delivery (pure: no I/O)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

__all__ = ["secret_key", "sign"]


def secret_key(whsec: str) -> bytes:
    """The HMAC key: the base64-decoded part of a `whsec_…` secret."""
    return base64.b64decode(whsec.removeprefix("whsec_"))


def sign(keys: Sequence[bytes], msg_id: str, timestamp: int, body: str) -> str:
    """`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, one per key, space-separated."""
    payload = f"{msg_id}.{timestamp}.{body}".encode()
    return " ".join(
        "v1," + base64.b64encode(hmac.new(k, payload, hashlib.sha256).digest()).decode()
        for k in keys
    )
