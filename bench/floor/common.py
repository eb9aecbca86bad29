"""What every floor hop shares: where to forward, and the one-field edit. Pure, no I/O."""

from __future__ import annotations

import orjson

UPSTREAM_HEADER = "x-bench-upstream"  # an origin, e.g. http://127.0.0.1:8080; the request path is kept
FORWARDED = ("content-type", "authorization")  # what a gateway must pass on for the upstream to answer
# The changed field: a gateway always rewrites something (model alias, user, metadata) before forwarding.
MARK_FIELD, MARK_VALUE = "user", "bench-floor"


def rewrite(raw: bytes) -> tuple[bytes, bool]:
    """(the body to forward, whether the client asked for a stream)."""
    body = orjson.loads(raw)
    body[MARK_FIELD] = MARK_VALUE
    return orjson.dumps(body), bool(body.get("stream"))


def is_local(origin: str) -> bool:
    """The hops forward only to loopback: the bench never sends a packet elsewhere."""
    return origin.startswith(("http://127.0.0.1:", "http://localhost:"))
