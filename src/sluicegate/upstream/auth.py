"""Upstream request headers: spec credential first, forwarded client headers last (they win).

Credentials are applied after translation and live only in the outgoing headers: nothing here is logged.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..header_names import connection_named
from ..providers.contract import ApiSpec

# Client headers a passthrough request never carries upstream. content-encoding: the body goes up decoded
# (server/bodies.py decodes every request body), so the client's label no longer describes it.
_NOT_PASSED = frozenset(
    {
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te",
        "trailer", "proxy-authorization", "proxy-connection", "expect", "accept-encoding", "cookie",
        "content-encoding",
    }
)


def upstream_headers(
    spec: ApiSpec,
    api_key: str | None,
    forwarded: Iterable[tuple[str, str]],
    *,
    content_type: str | None = "application/json",
) -> dict[str, str]:
    headers: dict[str, str] = {}
    if content_type:
        headers["content-type"] = content_type
    if api_key:
        headers.update(spec.auth_headers(api_key))
    for name, value in forwarded:
        headers[name] = value
    return headers


def passthrough_headers(incoming: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Client headers a passthrough route relays: all but x-portkey-* and hop-by-hop ones, those the client's
    Connection header names included (RFC 9110 7.6.1: they were for the gateway's hop alone)."""
    pairs = list(incoming)
    named = frozenset().union(*(connection_named(value) for name, value in pairs if name.lower() == "connection"))
    return [
        (name, value)
        for name, value in pairs
        if not name.lower().startswith("x-portkey-") and name.lower() not in _NOT_PASSED
        and name.lower() not in named
    ]
