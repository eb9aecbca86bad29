"""Relay an upstream SSE stream to the client chunk by chunk: no buffering, no re-framing.

A stream that breaks after it started is closed with an error event, never a silent clean end; a client
that goes away cancels the handler (or fails the write), which closes the upstream connection so the
upstream stops generating.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
from aiohttp import web

from ..upstream.exchange import Outcome
from ..providers import openai, sse
from ..telemetry.record import StreamTap

_TAIL = 64  # enough bytes to see "data: [DONE]" at the end of what was relayed
_UPSTREAM_READ_ERRORS = (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, asyncio.TimeoutError)


async def relay_stream(
    request: web.Request, outcome: Outcome, headers, tap: StreamTap | None = None
) -> web.StreamResponse:
    upstream = outcome.upstream
    assert upstream is not None and outcome.body is not None
    response = web.StreamResponse(status=outcome.status, headers=headers)
    response.content_type = "text/event-stream"
    response.headers["cache-control"] = "no-cache"
    try:
        await response.prepare(request)
        await response.write(outcome.body)
        if tap is not None:  # the held-back start holds the first content event: this is the first token
            tap.first_content_at = time.perf_counter()
        failure = await _pump(upstream, response, outcome.body[-_TAIL:], tap)
    finally:
        upstream.close()
    if failure:
        if tap is not None:
            tap.failure = failure
        await response.write(openai.stream_error_event(failure, "upstream_stream_error"))
    await response.write_eof()
    return response


async def _pump(
    upstream: aiohttp.ClientResponse, response: web.StreamResponse, tail: bytes, tap: StreamTap | None
) -> str | None:
    """Copy until the upstream ends; the reason it ended badly, or None for a clean ``[DONE]``.

    The tap only counts and keeps references to chunks already in hand (see telemetry/record.py).
    """
    while True:
        try:
            chunk = await upstream.content.readany()
        except _UPSTREAM_READ_ERRORS as exc:
            return f"upstream stream failed: {type(exc).__name__}"
        if not chunk:
            break
        await response.write(chunk)  # a client that left raises here and ends the relay
        if tap is not None:
            tap.feed(chunk)
        tail = (tail + chunk)[-_TAIL:]
    return None if sse.DONE_MARK in tail else "upstream closed the stream before it finished"
