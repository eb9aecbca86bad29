"""One upstream exchange: send a prepared request, and turn whatever happens into an Outcome.

Upstream failures (timeout, refused connection, a stream that breaks before its first content) become
Outcomes carrying the error envelope, not exceptions, so retries and fallbacks treat them like an
upstream status. Only an SSRF refusal raises: it is the gateway's own decision, not the upstream's.
Requests go out through a ``Transport`` (transport.py): the pooled aiohttp session, or a test's fake.

Whatever the transport, an answer the client could not take as sent is a failed attempt (502,
``InvalidResponse`` or ``ContentEncodingError``), never relayed: a status outside 200–599, or a
Content-Encoding still on the answer that not every transport decodes (``_ENCODINGS_DECODED``; the default
transport, h1, takes the header off what it decoded, see upstream/decoding.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

import orjson

from ..errors import UpstreamFailure, UpstreamStreamError, UpstreamTimeout, UpstreamUnreachable
from ..header_names import connection_named
from ..providers.contract import FAILED, PENDING, StreamDecoder
from ..types import OpenStream, Outcome, Prepared
from .transport import BodyBroken, BodyTooLarge, Transport, TransportError, TransportResponse, TransportTimeout

# Outcome and Prepared are the request's vocabulary (types.py); re-exported for older imports.
__all__ = ["DEFAULT_MAX_BODY_BYTES", "STREAM_PEEK_LIMIT", "Outcome", "Prepared", "exchange", "failure",
           "open_stream", "relayable_headers"]

STREAM_PEEK_LIMIT = 64 * 1024  # bytes held back at most while waiting for a stream's first content
DEFAULT_MAX_BODY_BYTES = 128 * 1024 * 1024  # Settings.max_upstream_body_bytes

# A Content-Encoding left on an answer (one line) that every transport has decoded (aiohttp's client decodes
# no other) or that means nothing: the body is plain. Anything else would reach the client encoded under a
# dropped header.
_ENCODINGS_DECODED = frozenset({"gzip", "deflate", "br", "identity"})

# Response headers that describe the hop, not the content; never relayed.
_HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "content-length", "content-encoding", "date", "server",
    }
)


async def exchange(
    transport: Transport, prepared: Prepared, target_path: str, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    scrub_errors: Callable[[bytes], bytes] | None = None,
) -> Outcome:
    """Send ``prepared`` once, within its timeout; ``target_path`` names the config target for the log. A
    non-streamed answer larger than ``max_body_bytes`` fails the attempt (502). ``scrub_errors``: how a stream's
    decoder scrubs the bytes of an upstream error event after the stream started (``hide_echoes``) of the
    credentials the gateway sent; an error before the start is an error answer, scrubbed by the caller."""
    if prepared.local_answer is not None:
        return Outcome(200, [("content-type", "application/json")], prepared.local_answer, prepared.provider,
                       target_path)
    try:
        if not prepared.timeout_ms:  # no deadline of its own: the transport's timeouts bound it (no timer to arm)
            return await _send(transport, prepared, target_path, max_body_bytes, scrub_errors)
        async with asyncio.timeout(prepared.timeout_ms / 1000.0):
            return await _send(transport, prepared, target_path, max_body_bytes, scrub_errors)
    # one name per clause: compiled (setup.py), a name keeps the type of its first binding
    except TimeoutError as timeout:
        timed_out = failure(_timed_out(timeout, prepared), target_path)
        timed_out.deadline_expired = not isinstance(timeout, TransportTimeout)
        return timed_out
    except TransportError as unreachable:
        return failure(_unreachable(unreachable, prepared), target_path)
    except UpstreamStreamError as refused:
        refused.provider = refused.provider or prepared.provider
        return _stream_refused(refused, prepared, target_path)
    except UpstreamFailure as failed:
        failed.provider = failed.provider or prepared.provider  # a translation's refusal of the answer names none
        return failure(failed, target_path)


def _timed_out(exc: TimeoutError, prepared: Prepared) -> UpstreamTimeout:
    """Which timeout fired: one of the transport's own (connect, read: when the request set none or a longer
    one), or the request's (a plain TimeoutError from asyncio.timeout)."""
    if isinstance(exc, TransportTimeout):
        return UpstreamTimeout(exc.seconds * 1000, prepared.provider, source=exc.source)
    return UpstreamTimeout(prepared.timeout_ms or 0, prepared.provider, source=prepared.timeout_source)


def failure(exc: UpstreamFailure, target_path: str, *, responded: bool = False) -> Outcome:
    body = orjson.dumps(exc.body())
    return Outcome(exc.status, [("content-type", "application/json")], body, exc.provider, target_path,
                   responded=responded)


def _stream_refused(exc: UpstreamStreamError, prepared: Prepared, target_path: str) -> Outcome:
    """A stream whose first event was an error with a status: answered as the same error answered as JSON
    (the translation's envelope, with the upstream's type and code), where errors are rewritten; else, or
    when the event held no data, in the gateway's envelope."""
    if exc.answer is None or not prepared.rewrite_errors:
        return failure(exc, target_path, responded=True)
    body = orjson.dumps(prepared.translation.error_body(exc.status, exc.answer, prepared.provider))
    return Outcome(exc.status, [("content-type", "application/json")], body, exc.provider, target_path,
                   responded=True)


async def _send(transport: Transport, prepared: Prepared, target_path: str, max_body_bytes: int,
                scrub_errors: Callable[[bytes], bytes] | None) -> Outcome:
    response = await transport.send(prepared.method, prepared.url, prepared.headers, prepared.body or None)
    headers, encoding = relayable_headers(response.headers)
    if not 200 <= response.status <= 599:  # no HTTP status: the client could not take it
        response.close()
        raise TransportError("InvalidResponse")
    if encoding is not None and encoding.strip().lower() not in _ENCODINGS_DECODED:
        response.close()
        raise TransportError("ContentEncodingError")
    ok = response.status < 400
    if ok and response.content_type == "text/event-stream":
        decoder = prepared.translation.stream_decoder()
        hide_echoes = getattr(decoder, "hide_echoes", None)  # a decoder that relays an upstream's error events
        if hide_echoes is not None and scrub_errors is not None:
            hide_echoes(scrub_errors)
        try:
            start = await open_stream(response, decoder, prepared.provider)
        except BaseException:
            response.close()
            raise
        attach = getattr(decoder, "attach", None)  # a decoder that may give up on the upstream's bytes
        if attach is not None:
            attach(response.close)
        return Outcome(response.status, headers, start, prepared.provider, target_path,
                       stream=OpenStream(response, decoder))
    body = await _read_capped(response, max_body_bytes, prepared.provider)
    if ok:
        body = prepared.translation.response_body(response.status, body)
        return Outcome(response.status, headers, body, prepared.provider, target_path,
                       measured=prepared.translation.measured_usage())
    if prepared.rewrite_errors:
        body = orjson.dumps(prepared.translation.error_body(response.status, body, prepared.provider))
        headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
        headers.append(("content-type", "application/json"))
    return Outcome(response.status, headers, body, prepared.provider, target_path)


async def _read_capped(response: TransportResponse, limit: int, provider: str) -> bytes:
    """The whole body, or an UpstreamFailure (502) as soon as it is known to exceed ``limit`` (the transport
    then drops the connection, so an endless body stops flowing)."""
    try:
        return await response.read(limit)
    except BodyTooLarge:
        raise UpstreamFailure(f"{provider}: the upstream's response body is larger than the gateway's "
                              f"limit of {limit} bytes", status=502, provider=provider) from None


def relayable_headers(items: Iterable[tuple[str, str]]) -> tuple[list[tuple[str, str]], str | None]:
    """The answer's headers a client gets (no hop-by-hop header, no x-portkey-*), and the Content-Encoding the
    answer still carries (None: none; two lines are given as one list that no transport decodes)."""
    kept = []
    encoding = None
    named: frozenset[str] = frozenset()
    for key, value in items:
        name = key.lower()
        if name in _HOP_BY_HOP:
            if name == "content-encoding":
                encoding = value if encoding is None else f"{encoding}, {value}"
            elif name == "connection" and value != "keep-alive":  # its usual value names no header
                named |= connection_named(value)
        elif not name.startswith("x-portkey-"):
            kept.append((key, value))
    if named:  # hop-by-hop too, by the upstream's say (RFC 9110 7.6.1)
        kept = [(key, value) for key, value in kept if key.lower() not in named]
    return kept, encoding


async def open_stream(response: TransportResponse, decoder: StreamDecoder, provider: str) -> bytes:
    """Read a stream until its first event with content (or its end), and return its start as the client
    gets it.

    Until then the stream's fate is open: an error event or a disconnect here is an upstream failure that
    can still be retried or fall back. After it, the stream is the client's and failures become error events.
    """
    held = 0
    while held < STREAM_PEEK_LIMIT:
        try:
            chunk = await response.read_chunk()
        except BodyBroken:  # the connection broke
            raise UpstreamUnreachable(f"{provider} stream ended before any content", provider) from None
        if not chunk:  # the upstream ended it: its answer, not the connection, failed
            raise UpstreamFailure(f"{provider} stream ended before any content", status=502, provider=provider)
        held += len(chunk)
        verdict, message, status, answer = decoder.opening(chunk)
        if verdict == FAILED:
            if status is None:  # no status named: a broken answer, as if none came
                raise UpstreamFailure(f"{provider} error: {message}", status=502, provider=provider)
            raise UpstreamStreamError(f"{provider} error: {message}", status=status, provider=provider,
                                      answer=answer)
        if verdict != PENDING:
            break
    return decoder.head()


def _unreachable(exc: TransportError, prepared: Prepared) -> UpstreamUnreachable:
    if exc.connect_reason is not None:
        return UpstreamUnreachable(f"Could not connect to {prepared.host}: {exc.connect_reason}",
                                   prepared.provider)
    return UpstreamUnreachable(f"Upstream {prepared.host} failed: {exc.kind}", prepared.provider)
