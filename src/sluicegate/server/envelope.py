"""A gateway error as an HTTP answer: its status, its JSON envelope (errors.py) and the request's trace id."""

from __future__ import annotations

import orjson
from aiohttp import web

from ..errors import GatewayError


def error_response(error: GatewayError, trace_id: str | None) -> web.Response:
    headers = {"x-portkey-trace-id": trace_id} if trace_id else {}
    headers.update(getattr(error, "headers", None) or {})  # a limit's Retry-After and x-ratelimit-*
    return web.Response(
        status=error.status,
        body=orjson.dumps(error.body()),
        content_type="application/json",
        headers=headers,
    )
