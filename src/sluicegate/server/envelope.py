"""A gateway error as an HTTP answer: its status, its JSON envelope (errors.py) and the request's trace id; and the
name every answer gives in its ``Server`` header."""

from __future__ import annotations

import orjson
from aiohttp import web

from ..errors import GatewayError

# The gateway's name, without versions. aiohttp's default, "Python/3.11 aiohttp/3.x", told anyone who asked which
# runtime and library answered, and so which of their advisories to try. Written by the native edge's heads
# (native.py), by a hook before aiohttp writes a head (app.py), and on aiohttp's refusals of what it cannot
# parse (malformed.py).
SERVER_NAME = "sluicegate"


def error_response(error: GatewayError, trace_id: str | None) -> web.Response:
    headers = {"x-portkey-trace-id": trace_id} if trace_id else {}
    headers.update(getattr(error, "headers", None) or {})  # a limit's Retry-After and x-ratelimit-*
    return web.Response(
        status=error.status,
        body=orjson.dumps(error.body()),
        content_type="application/json",
        headers=headers,
    )
