"""Relay an upstream SSE stream to the client chunk by chunk: no buffering, no re-framing.

The chunks go through the stream's decoder (the provider's, the same one that judged the start in
``upstream/exchange.py``): an OpenAI-compatible upstream's bytes pass as they are, a translated spec's are
rewritten into the client's events. A stream that breaks after it started is closed with the decoder's error
event, never a silent clean end; a client that goes away cancels the handler (or fails the write), which
closes the upstream connection so the upstream stops generating; so does a client that stops reading, once
the send bound passes (connections.py: a write that waits on it does not wait for ever). A clean stream's
answer ends with its last event, whenever the upstream ends its body. On the native edge (native.py) the
answer is its ``NativeStreamResponse``, written as aiohttp's would be.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from aiohttp import web
from multidict import CIMultiDict

from ..errors import SHUTDOWN_CUT, cut_by_shutdown
from ..providers.contract import StreamDecoder
from ..telemetry.record import StreamTap, ends_stream
from ..types import Outcome, UpstreamBody
from ..upstream.transport import TransportError, TransportTimeout
from .native import NativeRequest

LAST_WORDS_S = 0.5  # the longest a stream cut by shutdown waits to write its error event
AFTER_END_BYTES = 64 * 1024  # what an upstream may send after its stream's end, read and dropped


async def relay_stream(
    request: web.Request, outcome: Outcome, headers: CIMultiDict[str], tap: StreamTap | None = None,
    before_end: Callable[[], None] | None = None,
) -> web.StreamResponse:
    """``before_end`` is called once, before the stream's last event (or its end) is written: the request
    log's journal has the record before the client can have the whole answer."""
    before_end = before_end or _nothing
    stream = outcome.stream
    assert stream is not None and outcome.body is not None
    response = (request.stream_response(outcome.status, headers) if isinstance(request, NativeRequest)
                else web.StreamResponse(status=outcome.status, headers=headers))
    response.content_type = "text/event-stream"
    response.headers["cache-control"] = "no-cache"
    try:
        await response.prepare(request)
        if tap is not None:  # the held-back start holds the first content event: this is the first token
            tap.first_content_at = time.perf_counter()
        end = None
        if ends_stream(outcome.body):  # a short stream, whole in its held-back start
            end = (_sealed_at_end(stream.decoder, tap, before_end),)
        await _write(response, outcome.body, end)
        failure = await _pump(stream.body, stream.decoder, response, tap, before_end, end)
    except asyncio.CancelledError as cancelled:
        # Not a silent clean end: the SDK raises. (A stream whose clean end is out refuses the write.)
        if cut_by_shutdown(cancelled) and response.prepared:
            await _last_words(response, stream.decoder.error_event(SHUTDOWN_CUT, "gateway_shutdown"))
        raise
    finally:
        stream.close()
    if failure:
        if tap is not None:
            tap.failure = failure
        before_end()
        await response.write(stream.decoder.error_event(failure, "upstream_stream_error"))
    before_end()  # a stream that ended without its last event: before its end (idempotent)
    await response.write_eof()
    return response


async def _pump(
    upstream: UpstreamBody, decoder: StreamDecoder, response: web.StreamResponse, tap: StreamTap | None,
    before_end: Callable[[], None], end: tuple[str | None] | None = None,
) -> str | None:
    """Copy until the upstream ends; the reason it ended badly, or None for a clean end.

    The tap only counts and keeps references to chunks already in hand (see telemetry/record.py); it sees
    a chunk before the client does, so that the record sealed before the last event includes it. Once the
    stream's end ([DONE], message_stop) is out (``end`` holds its verdict), the client has its whole answer:
    what the upstream sends after it is read to the upstream's end (its connection can then serve again) and
    dropped, at most ``AFTER_END_BYTES`` of it (then the connection is dropped instead), and the verdict
    stays the one sealed into the record.
    """
    after_end = 0
    while True:
        try:
            chunk = await upstream.read_chunk()
        except (TransportError, TransportTimeout) as exc:
            return end[0] if end is not None else f"upstream stream failed: {exc.kind}"
        except TimeoutError as exc:
            return end[0] if end is not None else f"upstream stream failed: {type(exc).__name__}"
        if not chunk:
            break
        if end is not None:
            after_end += len(chunk)
            if after_end > AFTER_END_BYTES:  # an upstream that goes on after its end: not read for ever
                return end[0]
            continue
        out = decoder.relay(chunk)
        if out:
            if tap is not None:
                tap.feed(out)
            if ends_stream(out):
                end = (_sealed_at_end(decoder, tap, before_end),)
            await _write(response, out, end)  # a client that left raises here and ends the relay
    return end[0] if end is not None else decoder.end_failure()


async def _write(response: web.StreamResponse, data: bytes, end: tuple[str | None] | None) -> None:
    """Relay ``data``; when it holds the stream's clean end, the answer's own end goes out with it, in one
    write: the client has its whole answer at once, not when the upstream gets round to ending its body
    (what the upstream sends after is read and dropped). An end judged a failure is not the answer's end:
    the relay writes the error event after it."""
    if end is not None and end[0] is None:
        await response.write_eof(data)
    else:
        await response.write(data)


def _sealed_at_end(decoder: StreamDecoder, tap: StreamTap | None, before_end: Callable[[], None]) -> str | None:
    """The stream's end is about to go out: the decoder's verdict on what it relayed (an upstream error event
    before the end makes it a failure) is the stream's, and the record is sealed with it."""
    failure = decoder.end_failure()
    if failure and tap is not None:
        tap.failure = failure
    before_end()
    return failure


async def _last_words(response: web.StreamResponse, event: bytes) -> None:
    """Write a stream's closing event, and end it, while its task is being cancelled: briefly (a client that
    reads nothing must not hold shutdown), and never raising (the cancellation goes on)."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(LAST_WORDS_S):
            await response.write(event)
            await response.write_eof()


def _nothing() -> None:
    pass
