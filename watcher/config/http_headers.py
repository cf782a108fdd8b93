"""Static headers from the config (`[api] headers`, `[webhook] headers`), checked at start.

A header no HTTP request can carry (a non-ASCII or control character, a name that is not
an RFC 9110 token) would otherwise fail at the first request, in a loop; a webhook header
that the signature depends on, set twice, would make every delivery fail to verify. The
errors name the header, never its value: it may be a credential.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

__all__ = ["ApiHeaders", "WebhookHeaders"]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE = re.compile(r"[\t\x20-\x7e]*")
#: Set by the webhook sender for every delivery: the signature covers them.
WEBHOOK_OWN = frozenset(
    {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "content-type",
        "content-length",
        "host",
        "transfer-encoding",
    }
)


def _check(headers: dict[str, str], reserved: frozenset[str]) -> dict[str, str]:
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name):
            raise ValueError(f"{name!r} is not a valid header name")
        if name.lower() in reserved:
            raise ValueError(f"{name!r} is set by the watcher itself; leave it out")
        if not _VALUE.fullmatch(value):
            raise ValueError(
                f"the value of {name!r} holds a character a header cannot carry "
                "(only printable ASCII, spaces and tabs)"
            )
    return headers


def _api(headers: dict[str, str]) -> dict[str, str]:
    return _check(headers, frozenset())


def _webhook(headers: dict[str, str]) -> dict[str, str]:
    return _check(headers, WEBHOOK_OWN)


ApiHeaders = Annotated[dict[str, str], AfterValidator(_api)]
WebhookHeaders = Annotated[dict[str, str], AfterValidator(_webhook)]
