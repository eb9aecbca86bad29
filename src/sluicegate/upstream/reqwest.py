"""The pyreqwest transport (``SLUICEGATE_UPSTREAM_CLIENT=reqwest``: Rust's reqwest and hyper), pinned to the
addresses the SSRF guard checked.

For every request (docs/transport.md, "SSRF pinning"):

1. the URL is parsed once by the client's own parser (so the host we judge is the host it connects to);
   its origin passes the guard's request-time check (``check_url``, the per-hop check the aiohttp client
   runs as middleware);
2. a name is resolved and judged by the guard's resolver (every address, cached for its TTL; a refusal
   raises ``InvalidCustomHost`` before any socket opens); an IP literal is its own address;
3. the request goes through the client for ``(scheme, host, port, first allowed address)``, which maps the
   name to that address (``pinned.py``): the socket connects only there, while Host, SNI and the
   certificate check keep the name. If connecting fails, the next allowed address is tried.

Fixed client settings keep the wire as the gateway means it: no proxy from the environment, redirects not
followed, no decompression (so no Accept-Encoding is added; a compressed answer is decoded here, as the
aiohttp client did), HTTP/1.1, ``user-agent: sluicegate`` unless the request has one; a plain-http client is
built without the TLS verifier (which only loads the system's roots, ~5 ms a client). Every request is sent
with ``build_streamed()``, so a request abandoned before its head costs the upstream at most what the read
buffer holds (pyreqwest does not abort a request whose response has not started). That buffer is one byte,
so a stream is handed over chunk by chunk as it arrives (a larger one batches SSE events), unless the answer
cannot be a stream (``read_ahead``): then head and body come back in one batch, one round trip into Rust.
A body ends without another round trip when its announced length is in, and a complete body's client is
released without exiting the response's context (its connection is already back in the pool).

A connection that closes after the request went out and before a byte of the answer (an upstream's keep-alive
ran out as the pooled connection was reused) has the request sent once more under h1's rule (transport.py's
``replayable`` and ``REPLAY_WINDOW_S``): hyper repeats only requests it had not yet written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, NoReturn

import pyreqwest.exceptions as rq
from multidict import CIMultiDict
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.http import Url

from ..errors import InvalidCustomHost
from ..settings import Settings
from .addresses import parse_ip
from .client import USER_AGENT
from .decoding import BodyDecoder, DecodingFailed, decoder_for
from .guard import Guard
from .pinned import ClientKey, ClientPool, Lease
from .transport import (
    DEFAULT_CONTENT_TYPE,
    IDLE_CONNECTION_S,
    REPLAY_WINDOW_S,
    TARGET_CACHE_SIZE,
    BodyBroken,
    TransportError,
    TransportTimeout,
    checked_addresses,
    declares_empty_body,
    media_type,
    read_within,
    replayable,
    takes_default_type,
)

READ_AHEAD_BYTES = 256 * 1024  # what an answer that cannot be a stream may bring along with its head
# How the OS words a connection the upstream dropped (a reset, or a write after its close), in pyreqwest's causes.
_DROPPED = ("Connection reset by peer", "Broken pipe")
# Endpoints (OpenAI's and Anthropic's, which every unified endpoint and most passthroughs speak) where an
# answer streams only when the request's JSON says ``"stream": true``.
_STREAM_OPT_IN_PATHS = ("/chat/completions", "/completions", "/embeddings", "/messages", "/responses")


class _Target:
    """A request URL as the client parses it, with the origin the guard judges."""

    __slots__ = ("address", "host", "opt_in_stream", "origin", "port", "scheme", "url")

    def __init__(self, url: Url) -> None:
        host = url.host_str or ""
        port = url.port_or_known_default or 0
        self.url = url
        self.scheme = url.scheme
        self.host = host
        self.port = port
        self.origin = f"{self.scheme}://{host}:{port}"
        literal = host[1:-1] if host.startswith("[") else host
        self.address = literal if url.domain is None and parse_ip(literal) is not None else None
        self.opt_in_stream = url.path.endswith(_STREAM_OPT_IN_PATHS)


def read_ahead(target: _Target, body: bytes | None) -> int:
    """How many bytes pyreqwest may read before it hands over the head (its ``streamed_read_buffer_limit``).

    One, unless the answer cannot be a stream: then head and body come in one batch (one wake-up of the
    event loop, the connection back in the pool before Python sees the head). An answer cannot be a stream
    when the endpoint streams only on request and the body, a JSON object as sent (not compressed: its first
    byte is ``{``), does not ask: no ``"stream"`` key, written plainly or with ``\\u`` escapes (the only
    way JSON can spell that key otherwise).
    """
    if (target.opt_in_stream and body is not None and body[:1] == b"{" and b'"stream"' not in body
            and b"\\u" not in body):
        return READ_AHEAD_BYTES
    return 1


def build_client(settings: Settings, key: ClientKey) -> Client:
    """A client that reaches ``key.host`` at ``key.address`` only, with the gateway's fixed settings."""
    builder = (
        ClientBuilder()
        .no_proxy()
        .follow_redirects(False)
        .referer(False)
        .gzip(False).brotli(False).zstd(False).deflate(False)
        .http1_only()
        .http1_lower_case_headers()
        .user_agent(USER_AGENT)
        .connect_timeout(timedelta(seconds=settings.upstream_connect_timeout_s))
        .read_timeout(timedelta(seconds=settings.upstream_read_timeout_s))
        .pool_idle_timeout(timedelta(seconds=IDLE_CONNECTION_S))
        .tcp_nodelay(True)
    )
    if settings.upstream_pool_size > 0:
        builder = builder.max_connections(settings.upstream_pool_size)
    if key.scheme == "http":
        # Plain HTTP verifies no certificate, so the client skips loading the verifier and the system's
        # root store (~5 ms per client, paid by each new origin's first request). client_for() never hands
        # such a client an https URL.
        builder = builder.danger_accept_invalid_certs(True)
    address = key.address
    if key.host != address and key.host != f"[{address}]":
        builder = builder.resolve(key.host, address, 0)  # the port is the URL's; only the address is pinned
    return builder.build()


def client_for(lease: Lease, url: Url) -> Client:
    """The lease's client, for a URL of the very origin it was built and checked for: another host would
    reach pyreqwest's own resolver, and an https URL handed to a plain-http client would go out without a
    certificate check (those clients are built without a verifier)."""
    client = lease.client
    if client is None:  # closed by a shutdown racing this request
        raise TransportError("ClientClosedError")
    key = lease.key
    if key.host != url.host_str or key.scheme != url.scheme or key.port != url.port_or_known_default:
        raise InvalidCustomHost(f"{url.host_str} is not the origin this connection was checked for")
    return client


class ThreeArgumentThrow:
    """A pyreqwest awaitable whose ``throw`` takes an exception the way a coroutine's may be given one: as
    (type, value, traceback) too. Python's own frames pass one argument to the awaitable they wait on, but a
    coroutine compiled by mypyc (the request path, setup.py) passes three, which pyreqwest's refuses with a
    TypeError: the cancellation of a client's request would not reach the upstream call."""

    __slots__ = ("_awaited",)

    def __init__(self, awaitable: Any) -> None:
        self._awaited = awaitable.__await__()

    def __await__(self) -> ThreeArgumentThrow:
        return self

    def __iter__(self) -> ThreeArgumentThrow:
        return self

    def __next__(self) -> Any:
        return self._awaited.send(None)

    def send(self, value: Any) -> Any:
        return self._awaited.send(value)

    def throw(self, kind: Any, value: Any = None, traceback: Any = None) -> Any:
        return self._awaited.throw(value if value is not None else kind)

    def close(self) -> None:
        close = getattr(self._awaited, "close", None)
        if close is not None:
            close()


class ReqwestTransport:
    def __init__(self, settings: Settings, guard: Guard) -> None:
        self._guard = guard
        self._resolver = guard.resolver()
        self._connect_s = settings.upstream_connect_timeout_s
        self._read_s = settings.upstream_read_timeout_s
        self._targets: dict[str, _Target] = {}
        self._clients = ClientPool(lambda key: build_client(settings, key), lambda: self._resolver.generation)
        self._closing: set[asyncio.Task[Any]] = set()

    def connections_in_use(self) -> int:
        return self._clients.in_use

    async def send(
        self, method: str, url: str, headers: dict[str, str] | CIMultiDict[str], body: bytes | None
    ) -> ReqwestResponse:
        target = self._target(url)
        addresses = await checked_addresses(self._guard, self._resolver, target.origin, target.host,
                                            target.address, target.port)
        sent_headers = _wire_headers(method, headers, body)
        buffer = read_ahead(target, body)
        last = len(addresses) - 1
        for index, address in enumerate(addresses):
            key = ClientKey(target.scheme, target.host, target.port, address)
            try:
                return await self._exchange(key, target, method, headers, sent_headers, body, buffer)
            except (rq.ConnectError, rq.ConnectTimeoutError) as exc:
                if index == last or not _connecting(exc):
                    _reraise(exc, self._connect_s, self._read_s)
            except rq.PyreqwestError as exc:
                _reraise(exc, self._connect_s, self._read_s)
        raise AssertionError("unreachable: the guard returns at least one address")

    async def _exchange(self, key: ClientKey, target: _Target, method: str,
                        headers: dict[str, str] | CIMultiDict[str], sent_headers: Any, body: bytes | None,
                        buffer: int) -> ReqwestResponse:
        """The request on a pooled connection, and once more if that connection closed before answering when
        repeating cannot do twice what the upstream did once (the rule and its window are h1's, transport.py).
        hyper repeats a request by itself only when the connection closed before it was written; pyreqwest
        does not say whether the connection was a pooled one, so the window counts from the request's start."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            return await self._open(self._clients.acquire(key), target, method, sent_headers, body, buffer)
        except rq.ConnectError as exc:
            if not _closed_unanswered(exc) or not (loop.time() - started <= REPLAY_WINDOW_S
                                                   or replayable(method, headers)):
                raise
        return await self._open(self._clients.acquire(key), target, method, sent_headers, body, buffer)

    async def _open(self, lease: Lease, target: _Target, method: str, headers: Any, body: bytes | None,
                    buffer: int) -> ReqwestResponse:
        try:
            client = client_for(lease, target.url)
            builder = client.request(method, target.url).headers(headers).streamed_read_buffer_limit(buffer)
            if body is not None:
                builder = builder.body_bytes(body)
            request = builder.build_streamed()
            response = await ThreeArgumentThrow(request.__aenter__())
        except BaseException:
            self._clients.release(lease)
            raise
        try:
            return ReqwestResponse(self, request, response, lease)
        except DecodingFailed:
            self._finish_later(request)
            self._clients.release(lease)
            raise TransportError("ContentEncodingError") from None

    def _target(self, url: str) -> _Target:
        target = self._targets.get(url)
        if target is None:
            try:
                parsed = Url(url)
            except (ValueError, rq.PyreqwestError) as exc:
                raise InvalidCustomHost(f"the URL cannot be parsed: {exc}") from None
            target = _Target(parsed)
            if len(self._targets) >= TARGET_CACHE_SIZE:
                del self._targets[next(iter(self._targets))]
            self._targets[url] = target
        return target

    def _finish_later(self, request: Any) -> None:
        """Leave the response's context in the background (close() is synchronous): the connection drops."""
        task = asyncio.get_running_loop().create_task(request.__aexit__(None, None, None))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        while self._closing:
            await asyncio.gather(*list(self._closing), return_exceptions=True)
        await self._clients.close()


class ReqwestResponse:
    __slots__ = ("_decoder", "_done", "_lease", "_reader", "_remaining", "_request", "_response", "_transport",
                 "content_type", "headers", "status")

    def __init__(self, transport: ReqwestTransport, request: Any, response: Any, lease: Lease) -> None:
        self._transport = transport
        self._request = request
        self._response = response
        self._lease: Lease | None = lease
        self._reader = response.body_reader
        self.status: int = response.status
        self.headers: Iterable[tuple[str, str]] = response.headers.items()
        content_type = response.get_header("content-type")
        self.content_type = media_type(content_type)
        self._decoder: BodyDecoder | None = decoder_for(response.get_header("content-encoding"))
        # Bytes still to come when the upstream announced a length: once they are in, the body is complete
        # and nothing more is awaited from the client (no read for the end, no context exit).
        announced = response.get_header("content-length")
        self._remaining = int(announced) if announced is not None and announced.isdigit() else None
        self._done = False

    async def read(self, limit: int) -> bytes:
        return await read_within(self, limit, self._remaining if self._decoder is None else None)

    async def read_chunk(self) -> bytes:
        """The next bytes as they arrive (decoded, if the upstream encoded them); b"" at the end."""
        while not self._done:
            try:
                if self._remaining == 0:  # every announced byte is in: the end, without asking for it
                    self._end()
                    return b""
                chunk = await ThreeArgumentThrow(self._reader.read_chunk())
                if chunk is None:
                    self._end()
                    return b""
                raw = chunk.to_bytes()
                if self._remaining is not None:
                    self._remaining -= len(raw)
                if self._decoder is None:
                    return raw
                decoded = b"".join(self._decoder.slices(raw))
            except DecodingFailed as exc:
                self.close()
                raise BodyBroken("ContentEncodingError") from exc
            except rq.PyreqwestError as exc:
                self.close()
                _reraise(exc, self._transport._connect_s, self._transport._read_s, body=True)
            if decoded:
                return decoded
        return b""

    def _end(self) -> None:
        """The body is complete: the connection is already back in the client's pool (hyper returns it as
        soon as the response's last byte is read), so the response's context is not exited (an exit would
        only close a body reader that has nothing left to read)."""
        self._done = True
        try:
            if self._decoder is not None:
                self._decoder.finish()
        finally:
            self._release()

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._transport._finish_later(self._request)
            self._release()

    def _release(self) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            self._transport._clients.release(lease)


def _wire_headers(method: str, headers: dict[str, str] | CIMultiDict[str], body: bytes | None,
                  ) -> list[tuple[str, str]]:
    """The request's headers as sent, plus the two the aiohttp client adds: ``content-type:
    application/octet-stream`` for a body (or a POST, PUT, PATCH without one) that declares no type, and
    ``content-length: 0`` for a method other than GET, HEAD, OPTIONS, TRACE without a body."""
    items = list(headers.items())
    typeless = takes_default_type(method, body)
    empty = declares_empty_body(method, body)
    if not (typeless or empty):
        return items
    names = {name.lower() for name, _ in items}
    if typeless and "content-type" not in names:
        items.append(("content-type", DEFAULT_CONTENT_TYPE))
    if empty and "content-length" not in names:
        items.append(("content-length", "0"))
    return items


def _connecting(exc: rq.RequestError) -> bool:
    """Whether the error happened while opening the connection (pyreqwest raises ConnectTimeoutError also
    for a response head that did not come in time; only the cause chain tells them apart)."""
    causes = exc.details.get("causes") or () if isinstance(exc.details, dict) else ()
    return any(cause.get("message") == "client error (Connect)" for cause in causes)


def _closed_unanswered(exc: rq.RequestError) -> bool:
    """Whether the connection closed or was reset once the request was on its way and before a byte of the
    answer (hyper's IncompleteMessage, or the OS's reset or broken pipe): the upstream's keep-alive ran out as
    the pooled connection was reused, or the upstream dropped the request."""
    causes = exc.details.get("causes") or () if isinstance(exc.details, dict) else ()
    if _connecting(exc) or not causes:
        return False
    last = causes[-1].get("message", "")
    return last == "connection closed before message completed" or last.startswith(_DROPPED)


def _connect_reason(exc: rq.RequestError) -> str:
    """The OS's words, e.g. "Connection refused" (without pyreqwest's "(os error 111)")."""
    causes = exc.details.get("causes") or () if isinstance(exc.details, dict) else ()
    message = causes[-1].get("message", "") if causes else ""
    return message.rsplit(" (os error", 1)[0] or type(exc).__name__


def _reraise(exc: rq.PyreqwestError, connect_s: float, read_s: float, *, body: bool = False) -> NoReturn:
    raise _translated(exc, connect_s, read_s, body=body) from exc


def _translated(exc: rq.PyreqwestError, connect_s: float, read_s: float, *, body: bool) -> BaseException:
    """pyreqwest's exception in the transport's terms (transport.py), by where it was raised."""
    kind = type(exc).__name__
    if isinstance(exc, rq.ConnectTimeoutError) and _connecting(exc):
        return TransportTimeout("connect", connect_s, kind)
    if isinstance(exc, rq.ConnectTimeoutError | rq.ReadTimeoutError):  # no head in time, or a silent body
        return TransportTimeout("read", read_s, kind)
    if isinstance(exc, rq.RequestTimeoutError):
        return TransportTimeout("read", read_s, kind)
    if isinstance(exc, rq.ConnectError) and _connecting(exc):
        return TransportError(kind, connect_reason=_connect_reason(exc))
    if body:  # the framing broke, the connection reset or closed mid-body (pyreqwest's class varies)
        return BodyBroken(kind)
    if isinstance(exc, rq.ConnectError) and _closed_unanswered(exc):
        return TransportError("ServerDisconnectedError")  # the name the other transports give it
    return TransportError(kind)
