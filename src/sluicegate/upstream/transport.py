"""The transport seam: the one interface the exchange sends upstream requests through.

Three real ones, one setting apart (``SLUICEGATE_UPSTREAM_CLIENT``): ``h1.py``'s HTTP/1.1 on the event loop
(the default), ``reqwest.py``'s pyreqwest clients, and ``AiohttpTransport`` here (the pooled session of
``client.py``); tests hand the dispatcher an in-process fake instead (``tests/fakes/transport.py``, like
httpx's MockTransport), so the core runs against a scripted upstream in milliseconds. A transport speaks in
the gateway's terms, never its library's:

  - an upstream that cannot be reached or breaks off raises ``TransportError`` (``BodyBroken`` when the
    body's framing broke mid-read); ``kind`` names what happened, for messages;
  - the SSRF guard's refusal raises ``InvalidCustomHost`` (the gateway's own decision);
  - one of its own timeouts raises ``TransportTimeout`` (a ``TimeoutError`` naming which one fired);
    the request's own timeout is the caller's ``asyncio.timeout``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NoReturn, Protocol

import aiohttp
from multidict import CIMultiDict
from mypy_extensions import mypyc_attr

from .guard import Guard, GuardedResolver, blocked_reason

# What the aiohttp client added to a request, which every transport adds the same way (the wire is compared
# in tests/upstream/test_transport_contract.py), and what it reported for an answer without a type.
DEFAULT_CONTENT_TYPE = "application/octet-stream"
# What every transport keeps: parsed target URLs (bounded: clients choose them), idle connections for as long
# as the aiohttp connector's keepalive_timeout.
TARGET_CACHE_SIZE = 1024
IDLE_CONNECTION_S = 30.0
_BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Sent again after a reused connection failed before a byte of the answer, however long the upstream held them.
REPLAYABLE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
# Any other request is sent again only if its reused connection failed within this long of its write: the
# longest the upstream can have held it. The idle-close race (the upstream closed the connection as we reused
# it) shows within a round trip and a turn or two of the loop: tens of microseconds on loopback, under 1 ms on
# a LAN, where the upstreams with short keep-alives live (uvicorn's is 5 s; providers keep theirs longer than
# our IDLE_CONNECTION_S); a failed write shows in the loop's next turn. An LLM's prefill alone takes longer,
# so a close this soon is not one after acting on the request. Erring late is safe: a close seen after the
# window (a far upstream's race, a loop busy for milliseconds) fails the request instead of repeating it.
REPLAY_WINDOW_S = 0.005


def replayable(method: str, headers: dict[str, str] | CIMultiDict[str]) -> bool:
    """Whether a request may be sent twice however long the upstream held it: its method is idempotent, or it
    carries an ``Idempotency-Key`` (draft-ietf-httpapi-idempotency-key-header; OpenAI's and Stripe's APIs
    answer a repeat with the first answer; Go's client repeats such a request too)."""
    return method in REPLAYABLE_METHODS or any(name.lower() == "idempotency-key" for name in headers)


def takes_default_type(method: str, body: bytes | None) -> bool:
    """A request that gets ``content-type: application/octet-stream`` when it declares no type: one with a
    body, or a POST, PUT or PATCH without one."""
    return body is not None or method in _BODY_METHODS


def declares_empty_body(method: str, body: bytes | None) -> bool:
    """A request without a body that says so (``content-length: 0``): any method but GET, HEAD, OPTIONS,
    TRACE."""
    return body is None and method not in _BODYLESS_METHODS


def media_type(content_type: str | None) -> str:
    """An answer's Content-Type as the gateway reads it: lower case, without parameters; the default when it
    is missing or empty."""
    return (content_type.partition(";")[0].strip().lower() if content_type else "") or DEFAULT_CONTENT_TYPE


class TransportError(Exception):
    """No usable answer: refused connection, DNS failure, reset, broken body."""

    def __init__(self, kind: str, *, connect_reason: str | None = None) -> None:
        super().__init__(kind)
        self.kind = kind  # the failure's name, e.g. "ServerDisconnectedError"
        self.connect_reason = connect_reason  # set when the connection itself failed, e.g. "Connection refused"


class BodyBroken(TransportError):
    """The body's framing broke mid-read (truncated chunked encoding, wrong length)."""


class BodyTooLarge(Exception):
    """A body beyond the reader's limit: the connection was dropped (what was read is freed)."""


@mypyc_attr(native_class=False)  # compiled (setup.py), a subclass of TimeoutError stays a Python class
class TransportTimeout(TimeoutError):
    """The transport's own ``connect`` or ``read`` timeout fired after ``seconds``."""

    def __init__(self, source: str, seconds: float, kind: str) -> None:
        super().__init__(kind)
        self.source = source  # "connect" | "read"
        self.seconds = seconds
        self.kind = kind  # the failure's name, e.g. "ServerTimeoutError"


class TransportResponse(Protocol):
    status: int
    headers: Iterable[tuple[str, str]]
    content_type: str

    async def read(self, limit: int) -> bytes:
        """The whole (decoded) body, then the connection is released; ``BodyTooLarge`` as soon as it is
        known to exceed ``limit`` bytes."""
        ...

    async def read_chunk(self) -> bytes:
        """The next bytes as they arrive; b"" at the end."""
        ...

    def close(self) -> None: ...


async def checked_addresses(guard: Guard, resolver: GuardedResolver, origin: str, name: str,
                            literal: str | None, port: int) -> tuple[str, ...]:
    """Where a pinning transport may connect for ``origin``: its IP literal, or every address the guard's
    resolver judged ``name`` to have (cached for the verdict's TTL). The origin passes the request-time check
    first (``check_url``, cached). A refusal raises ``InvalidCustomHost`` before any socket opens."""
    guard.check_url(origin)
    if literal is not None:
        return (literal,)
    try:
        return await resolver.addresses(name, port)
    except OSError as exc:  # the name did not resolve (the words are the resolver's, as with aiohttp)
        raise TransportError("ClientConnectorDNSError", connect_reason=exc.strerror or type(exc).__name__) from exc


async def read_within(response: TransportResponse, limit: int, announced: int | None) -> bytes:
    """``response``'s whole body through its ``read_chunk``, for transports that hand bytes over as they come:
    ``BodyTooLarge`` before reading when the bytes still ``announced`` (None: unknown, or decoded) exceed
    ``limit``, else as soon as the count does. A failure, a cancellation or the limit closes the response
    (dropped, not pooled: an endless body stops flowing, a cancelled read lets go)."""
    if announced is not None and announced > limit:
        response.close()
        raise BodyTooLarge(f"larger than {limit} bytes")
    body = bytearray()
    try:
        while chunk := await response.read_chunk():
            body += chunk
            if len(body) > limit:
                raise BodyTooLarge(f"larger than {limit} bytes")
    except BaseException:
        response.close()
        raise
    return bytes(body)


class Transport(Protocol):
    async def send(
        self, method: str, url: str, headers: dict[str, str] | CIMultiDict[str], body: bytes | None
    ) -> TransportResponse:
        """Send one request (redirects are never followed) and return once the headers are in."""
        ...

    async def close(self) -> None:
        """Release every connection (at shutdown)."""
        ...


@dataclass(slots=True)
class _AiohttpResponse:
    response: aiohttp.ClientResponse
    timeouts: aiohttp.ClientTimeout
    status: int
    headers: Iterable[tuple[str, str]]
    content_type: str

    async def read(self, limit: int) -> bytes:
        try:
            async with self.response:
                return await _read_capped(self.response, limit)
        except (aiohttp.ClientError, TimeoutError) as exc:
            _reraise(exc, self.timeouts)

    async def read_chunk(self) -> bytes:
        try:
            return await self.response.content.readany()
        except (aiohttp.ClientError, TimeoutError) as exc:
            _reraise(exc, self.timeouts)

    def close(self) -> None:
        self.response.close()


class AiohttpTransport:
    """The real transport: the gateway's one pooled ``aiohttp.ClientSession`` (``client.py``)."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def send(
        self, method: str, url: str, headers: dict[str, str] | CIMultiDict[str], body: bytes | None
    ) -> _AiohttpResponse:
        timeouts = self.session.timeout
        try:
            response = await self.session.request(method, url, headers=headers, data=body,
                                                  allow_redirects=False)
        except (aiohttp.ClientError, TimeoutError) as exc:
            blocked = blocked_reason(exc)
            if blocked is not None:
                raise blocked from None
            _reraise(exc, timeouts)
        return _AiohttpResponse(response, timeouts, response.status, response.headers.items(),
                                response.content_type)

    async def close(self) -> None:
        await self.session.close()


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    announced = response.content_length
    if announced is None or announced <= limit or "content-encoding" in response.headers:
        body = bytearray()
        async for chunk in response.content.iter_any():
            body += chunk
            if len(body) > limit:
                break
        else:
            return bytes(body)
    response.close()  # not back to the pool: an endless body stops flowing
    raise BodyTooLarge(f"larger than {limit} bytes")


def _reraise(exc: BaseException, timeouts: aiohttp.ClientTimeout) -> NoReturn:
    translated = _translated(exc, timeouts)
    if translated is exc:
        raise exc
    raise translated from exc


def _translated(exc: BaseException, timeouts: aiohttp.ClientTimeout) -> BaseException:
    """aiohttp's exception in the transport's terms (the module docstring)."""
    kind = type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):  # before ServerTimeoutError: a subclass of it
        return TransportTimeout("connect", timeouts.sock_connect or 0, kind)
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return TransportTimeout("read", timeouts.sock_read or 0, kind)
    if isinstance(exc, TimeoutError):
        return exc  # the caller's own deadline (asyncio.timeout): it knows what it set
    if isinstance(exc, aiohttp.ClientPayloadError):
        return BodyBroken(kind)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return TransportError(kind, connect_reason=exc.os_error.strerror or type(exc.os_error).__name__)
    return TransportError(kind)
