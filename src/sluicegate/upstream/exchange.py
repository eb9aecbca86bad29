"""One upstream exchange: send a prepared request, and turn whatever happens into an Outcome.

Upstream failures (timeout, refused connection, a stream that breaks before its first content) become
Outcomes carrying the error envelope, not exceptions, so retries and fallbacks treat them like an
upstream status. Only an SSRF refusal raises: it is the gateway's own decision, not the upstream's.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import ModuleType

import aiohttp
import orjson
from multidict import CIMultiDict

from ..errors import UpstreamFailure, UpstreamTimeout, UpstreamUnreachable
from ..providers import sse
from .guard import blocked_reason

STREAM_PEEK_LIMIT = 64 * 1024  # bytes held back at most while waiting for a stream's first content
DEFAULT_MAX_BODY_BYTES = 128 * 1024 * 1024  # Settings.max_upstream_body_bytes

# Response headers that describe the hop, not the content; never relayed.
_HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "content-length", "content-encoding", "date", "server",
    }
)


@dataclass(slots=True)
class Prepared:
    """An upstream request ready to send: everything resolved, credentials in the headers only."""

    provider: str
    spec: ModuleType
    method: str
    url: str
    host: str  # the checked base URL, safe to show (no credentials): used in messages and logs
    headers: dict[str, str] | CIMultiDict[str]
    body: bytes
    timeout_ms: int | None
    rewrite_errors: bool  # unified endpoints answer errors in the unified envelope; passthrough relays
    timeout_source: str = "header"  # where timeout_ms was set: "header" or "config" (the message names it)


@dataclass(slots=True)
class Outcome:
    """What one attempt (or one target, after its retries) produced."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes | None  # complete body, or the held-back start of a stream
    provider: str | None
    path: str
    upstream: aiohttp.ClientResponse | None = None  # an open stream still to relay
    responded: bool = True  # False: no HTTP answer (timeout, connection error, broken stream start)
    retries: int = 0
    gateway_exception: bool = False

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def discard(self) -> None:
        """Drop an outcome that will not be used (closing a held stream frees its connection)."""
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None


async def exchange(
    session: aiohttp.ClientSession, prepared: Prepared, path: str, *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> Outcome:
    """Send ``prepared`` once, within its timeout; ``path`` names the config target for the log. A
    non-streamed answer larger than ``max_body_bytes`` fails the attempt (502)."""
    timeout_s = prepared.timeout_ms / 1000.0 if prepared.timeout_ms else None
    try:
        async with asyncio.timeout(timeout_s):
            return await _send(session, prepared, path, max_body_bytes)
    except TimeoutError as exc:
        return failure(_timed_out(exc, session, prepared), path)
    except aiohttp.ClientError as exc:
        blocked = blocked_reason(exc)
        if blocked is not None:
            raise blocked from None
        return failure(_unreachable(exc, prepared), path)
    except UpstreamFailure as exc:
        return failure(exc, path)


def _timed_out(exc: TimeoutError, session: aiohttp.ClientSession, prepared: Prepared) -> UpstreamTimeout:
    """Which timeout fired: the request's own (a plain TimeoutError from asyncio.timeout), or one of the
    session's (aiohttp's subclasses), which apply when the request set none or set a longer one."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return UpstreamTimeout((session.timeout.sock_connect or 0) * 1000, prepared.provider, source="connect")
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return UpstreamTimeout((session.timeout.sock_read or 0) * 1000, prepared.provider, source="read")
    return UpstreamTimeout(prepared.timeout_ms or 0, prepared.provider, source=prepared.timeout_source)


def failure(exc: UpstreamFailure, path: str, *, responded: bool = False) -> Outcome:
    body = orjson.dumps(exc.body())
    return Outcome(exc.status, [("content-type", "application/json")], body, exc.provider, path,
                   responded=responded)


async def _send(session: aiohttp.ClientSession, prepared: Prepared, path: str, max_body_bytes: int) -> Outcome:
    response = await session.request(
        prepared.method, prepared.url, headers=prepared.headers, data=prepared.body or None,
        allow_redirects=False,
    )
    headers = relayable_headers(response.headers.items())
    if response.ok and response.content_type == "text/event-stream":
        try:
            start = await open_stream(response, prepared.provider)
        except BaseException:
            response.close()
            raise
        return Outcome(response.status, headers, start, prepared.provider, path, upstream=response)
    async with response:
        body = await read_capped(response, max_body_bytes, prepared.provider)
    if not response.ok and prepared.rewrite_errors:
        body = orjson.dumps(prepared.spec.error_body(response.status, body, prepared.provider))
        headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
        headers.append(("content-type", "application/json"))
    return Outcome(response.status, headers, body, prepared.provider, path)


async def read_capped(response: aiohttp.ClientResponse, limit: int, provider: str) -> bytes:
    """The whole (decoded) body, or an UpstreamFailure (502) as soon as it is known to exceed ``limit``.

    The connection is then closed, not returned to the pool, so an endless body stops flowing, and
    what was read so far is freed with this frame.
    """
    announced = response.content_length
    if announced is None or announced <= limit or "content-encoding" in response.headers:
        body = bytearray()
        async for chunk in response.content.iter_any():
            body += chunk
            if len(body) > limit:
                break
        else:
            return bytes(body)
    response.close()
    raise UpstreamFailure(f"{provider}: the upstream's response body is larger than the gateway's "
                          f"limit of {limit} bytes", status=502, provider=provider)


def relayable_headers(items) -> list[tuple[str, str]]:
    return [(k, v) for k, v in items if k.lower() not in _HOP_BY_HOP and not k.lower().startswith("x-portkey-")]


async def open_stream(response: aiohttp.ClientResponse, provider: str) -> bytes:
    """Read a stream until its first event with content (or its end), and return what was read.

    Until then the stream's fate is open: an error event or a disconnect here is an upstream failure that
    can still be retried or fall back. After it, the stream is the client's and failures become error events.
    """
    buffer, scanned = b"", 0
    while len(buffer) < STREAM_PEEK_LIMIT:
        try:
            chunk = await response.content.readany()
        except aiohttp.ClientPayloadError:
            chunk = b""
        if not chunk:
            raise UpstreamUnreachable(f"{provider} stream ended before any content", provider)
        buffer += chunk
        events, rest = sse.split_events(buffer[scanned:])
        for event in events:
            kind, message = sse.classify_event(event)
            if kind == sse.ERROR:
                raise UpstreamFailure(f"{provider} error: {message}", status=502, provider=provider)
            if kind in (sse.CONTENT, sse.DONE):
                return buffer
        scanned = len(buffer) - len(rest)  # resume after the last complete event
    return buffer


def _unreachable(exc: aiohttp.ClientError, prepared: Prepared) -> UpstreamUnreachable:
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or type(exc.os_error).__name__
        return UpstreamUnreachable(f"Could not connect to {prepared.host}: {reason}", prepared.provider)
    return UpstreamUnreachable(f"Upstream {prepared.host} failed: {type(exc).__name__}", prepared.provider)
