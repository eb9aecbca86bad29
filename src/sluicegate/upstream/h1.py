"""The default transport: HTTP/1.1 spoken on the event loop's own thread, pinned to the addresses the SSRF
guard checked.

Why on the loop: a client whose I/O runs in threads of its own (pyreqwest's Rust runtime, ``reqwest.py``)
hands every response head and body back across threads, and under load the GIL changes hands several times
per request; on the gateway's busy loop those hand-overs cost more than the whole exchange done here, in the
loop's own socket callbacks with llhttp (``httptools``) parsing the answer in C (docs/transport.md, "The
client on the loop").

For every request:

1. the URL is parsed once (cached) and its origin passes the guard's request-time check (``check_url``);
2. a name is resolved and judged by the guard's resolver (every address, cached for its TTL; a refusal raises
   ``InvalidCustomHost`` before any socket opens); an IP literal is its own address;
3. a kept-alive connection to ``(scheme, host, port, first allowed address)`` is reused, or one is opened to
   that address: the socket connects only there, while Host and, for https, SNI and the certificate check
   keep the name. If connecting fails, the next allowed address is tried;
4. the request's bytes go out with the other writes of the loop's turn (``write_batch.py``), not one by one.

The wire is the one the pyreqwest client wrote (and the aiohttp client before it): the caller's headers
with lower-case names, then ``accept: */*`` and ``user-agent: sluicegate`` unless given, ``content-type:
application/octet-stream`` for a body without a type, ``host``, and ``content-length`` for a body (or ``0``
for a method that should carry one). No redirect is followed, no proxy is consulted, nothing is asked to be
compressed; a compressed answer is decoded here (``decoding.py``). Answers are framed by llhttp
(content-length, chunked, or to the connection's end), and their bytes are handed over as they arrive,
reading from the upstream paused while more than ``BUFFER_HIGH`` bytes wait unread (backpressure).

What an answer may not be (each is an ``InvalidResponse``, the answer's connection dropped): a final status
outside 200–599 (llhttp takes any three digits: ``000``, ``099``, ``999``); a head (its informational heads
before it included) of more than ``HEAD_MAX_BYTES``, or with more than ``HEAD_MAX_HEADERS`` fields; more than
``HEAD_MAX_BYTES`` in a row that are not body (chunk framing, trailers, a second answer): llhttp has no limit
of its own, and httptools keeps a header line's pieces until it ends.

Timeouts: connecting (and the TLS handshake) within ``upstream_connect_timeout_s``; each wait for the head
or for more of the body within ``upstream_read_timeout_s``; the request's total deadline is the caller's.
A connection goes back to the pool only after a complete answer the upstream lets us keep; one left idle
``IDLE_CONNECTION_S`` is closed, and so is every idle one when the allow-list changes (a changed verdict
never rides on an old connection).

A reused connection that fails before a byte of the answer (the upstream's keep-alive ran out as the request
left) has the request sent again on a new connection, once, when repeating it cannot do twice what the
upstream did once: a method RFC 9110 calls idempotent (``REPLAYABLE_METHODS``), a request carrying an
``Idempotency-Key`` header, or any request whose connection failed within ``REPLAY_WINDOW_S`` of its write
(the close was the idle one, already on its way: the upstream cannot have acted on the request). A POST the
upstream held longer (read, then closed or reset: a crash in prefill, a balancer's reset) is not repeated:
the caller gets the failure.
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple
from urllib.parse import quote, urlsplit

import httptools
from multidict import CIMultiDict

from ..errors import InvalidCustomHost
from ..header_names import CONTROL_CHARACTERS
from ..settings import Settings
from ..write_batch import WriteBatch
from .addresses import parse_ip
from .client import USER_AGENT
from .decoding import BodyDecoder, DecodingFailed, decoder_for
from .guard import Guard
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

BUFFER_HIGH = 256 * 1024  # unread answer bytes at which reading from the upstream pauses
# An answer's head: at most this many bytes (its lines, informational heads before it included) and fields.
# aiohttp's client allowed 128 fields of at most 8,190 bytes a line; real providers send 10 to 40 lines.
HEAD_MAX_BYTES = 64 * 1024
HEAD_MAX_HEADERS = 128
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Framing is the transport's: a caller's value for these would contradict the bytes it sends.
_FRAMING = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# What may stay as is in a request target (RFC 3986 pchar, "/" and "?", and "%" of what is already encoded).
_TARGET_SAFE = "/?%:@!$&'()*+,;=-._~"


class _Refused(Exception):
    """Raised in a parser callback: llhttp stops there and the answer is an InvalidResponse."""


class ConnectionKey(NamedTuple):
    scheme: str
    host: str  # as written in the Host header: IDNA ASCII, IPv6 in brackets
    port: int
    address: str  # the checked IP literal the socket connects to


class _Target:
    """A request URL, parsed once: where it goes and what its request line and Host header say."""

    __slots__ = ("address", "authority", "host", "origin", "port", "scheme", "server_name", "target")

    def __init__(self, url: str) -> None:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise InvalidCustomHost(f"the URL cannot be parsed: {exc}") from None
        scheme = parts.scheme.lower()
        name = parts.hostname or ""
        if scheme not in _DEFAULT_PORTS or not name:
            raise InvalidCustomHost("the URL cannot be parsed: it needs http:// or https:// and a host")
        if not name.isascii():
            try:
                name = name.encode("idna").decode("ascii")
            except UnicodeError:
                raise InvalidCustomHost("the URL cannot be parsed: invalid international domain name") from None
        literal = parse_ip(name)
        self.scheme = scheme
        self.port = port if port is not None else _DEFAULT_PORTS[scheme]
        self.host = f"[{name}]" if literal is not None and literal.version == 6 else name
        self.server_name = name  # SNI and the certificate's name (an IP literal is checked as an address)
        self.address = name if literal is not None else None
        self.origin = f"{scheme}://{self.host}:{self.port}"
        self.authority = self.host if port is None or port == _DEFAULT_PORTS[scheme] else f"{self.host}:{port}"
        path = parts.path or "/"
        self.target = quote(f"{path}?{parts.query}" if parts.query else path, safe=_TARGET_SAFE)


class _Connection(asyncio.Protocol):
    """One kept-alive upstream connection and the answer it is reading (one at a time: HTTP/1.1)."""

    def __init__(self, pool: _Pool, key: ConnectionKey, generation: int) -> None:
        self.pool = pool
        # Made by a protocol factory, in the loop. Held: on Python 3.11 each get_running_loop() is a getpid()
        # system call, and a request asked for it several times.
        self.loop = asyncio.get_running_loop()
        self.key = key
        self.generation = generation
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.lost = False
        self.reused = False
        self.idle_since = 0.0
        self.lost_at = float("inf")  # when the loop saw the connection end (loop time)
        self._waiter: asyncio.Future[None] | None = None
        # The read bound: one timer per connection, re-armed only when it fires before the deadline of the
        # wait in progress (as the connection guard's head timer). A timer made and cancelled per wait cost
        # ~2 % of the loop's time per request.
        self._read_timer: asyncio.TimerHandle | None = None
        self._read_deadline = 0.0
        self._read_s = 0.0
        self.begin(skip_body=False)
        self.busy = False  # until a request is written

    def begin(self, *, skip_body: bool) -> None:
        """Ready for the next answer (``skip_body``: it answers a HEAD request)."""
        self.busy = True
        self.skip_body = skip_body
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.head_size = 0  # bytes of the head's fields so far (informational heads' included)
        self.unframed = 0  # bytes read in a row that were not body: the head's so far, then framing
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self.informational = False
        self.surplus = False
        self.received = False
        self.error: BaseException | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.paused = False

    # -- asyncio's protocol -----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.busy:  # bytes nobody asked for, on a kept connection: it cannot be trusted with an answer
            self.abort()
            return
        self.received = True
        head_done = self.head_done
        buffered = self.buffered
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(TransportError("UpgradeRefused"))
            return
        except httptools.HttpParserError:
            self._fail(BodyBroken("InvalidResponse") if self.head_done else TransportError("InvalidResponse"))
            return
        if head_done:  # what is not body (chunk framing, trailers, a second answer) must not pile up
            body = self.buffered - buffered
            self.unframed = len(data) - body if body else self.unframed + len(data)
            if self.unframed > HEAD_MAX_BYTES:
                self._fail(BodyBroken("InvalidResponse"))
        elif not self.head_done:  # a head that does not end (its fields are counted as they complete)
            self.unframed += len(data)
            if self.unframed > HEAD_MAX_BYTES:
                self._fail(TransportError("InvalidResponse"))
        else:
            self.unframed = 0

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.lost_at = self.loop.time()
        if self.head_done and not self.complete and self.error is None and exc is None and self._to_the_end():
            self.complete = True  # a body framed by the connection's end: that end is its end
        elif not self.complete and self.error is None:
            kind = "ServerDisconnectedError"
            self.error = BodyBroken(kind) if self.head_done else TransportError(kind)
        self.pool.forget(self)
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None
        self._wake()

    # -- llhttp's callbacks -----------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:  # a second answer to one request: ignored, and the connection is not kept
            self.surplus = True
            self.keep_alive = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.head_done:  # not a trailer, nor a second answer's
            self.head_size += len(name) + len(value) + 4  # "name: value\r\n"
            # As aiohttp reads them (and both edges write them back as UTF-8): a value in UTF-8 reaches the
            # client as its bytes; read as latin-1, each byte past ASCII was encoded twice on the way out.
            self.headers.append((name.decode("latin-1").lower(), value.decode("utf-8", "surrogateescape")))

    def on_headers_complete(self) -> None:
        if self.surplus:
            return
        if self.head_size > HEAD_MAX_BYTES or len(self.headers) > HEAD_MAX_HEADERS:
            raise _Refused
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # 100 Continue and the like: the answer is still to come
            self.informational = True
            self.headers = []
            return
        if status < 200 or status > 599:  # no HTTP status (llhttp takes any three digits)
            raise _Refused
        self.status = status
        self.head_done = True
        if self.skip_body:  # the answer to a HEAD has no body, whatever its length says; not kept
            self.complete = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > BUFFER_HIGH and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.surplus:
            return
        if self.informational:
            self.informational = False
            return
        if not self.complete:
            self.complete = True
            self.keep_alive = self.parser.should_keep_alive()
        self._wake()

    # -- the answer's reader ----------------------------------------------------------------------------

    def _to_the_end(self) -> bool:
        names = {name for name, _ in self.headers}
        return "content-length" not in names and "transfer-encoding" not in names

    def _fail(self, error: BaseException) -> None:
        self.error = error
        self.abort()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, read_s: float) -> None:
        """Until more of the answer (its head, bytes, its end or a failure) is in, at most ``read_s``."""
        loop = self.loop
        waiter = self._waiter = loop.create_future()
        deadline = self._read_deadline = loop.time() + read_s
        self._read_s = read_s
        timer = self._read_timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self._read_timer = loop.call_at(deadline, self._read_timer_fired)
        try:
            await waiter
        finally:
            self._waiter = None

    def _read_timer_fired(self) -> None:
        self._read_timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():  # nobody is waiting: the next wait arms it again
            return
        if self.loop.time() < self._read_deadline:  # armed for an earlier wait: this one's deadline holds
            self._read_timer = self.loop.call_at(self._read_deadline, self._read_timer_fired)
            return
        waiter.set_exception(TransportTimeout("read", self._read_s, "ReadTimeoutError"))

    def take(self) -> bytes:
        """Every byte of the body received and not yet taken."""
        chunks = self.chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return data

    def abort(self) -> None:
        """Drop the connection at once: the upstream sees it closed, nothing goes back to the pool."""
        if self.transport is not None:
            self.transport.abort()


class _Pool:
    """Connections by key: idle ones to reuse, a count of open ones (bounded by ``limit``, 0 for none), and
    the allow-list generation they were opened under."""

    def __init__(self, limit: int, idle_s: float, generation: Callable[[], int],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._idle_s = idle_s
        self._generation = generation
        self._seen_generation = generation()
        self._clock = clock
        self._idle: dict[ConnectionKey, list[_Connection]] = {}
        self._open: set[_Connection] = set()
        self._opening = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._sweep: asyncio.TimerHandle | None = None
        self.in_use = 0

    def current_generation(self) -> int:
        generation = self._generation()
        if generation != self._seen_generation:
            self._seen_generation = generation
            for idle in list(self._idle.values()):
                for connection in list(idle):
                    connection.abort()
                    self.forget(connection)
        return generation

    def idle_count(self) -> int:
        return sum(map(len, self._idle.values()))

    async def take(self, key: ConnectionKey, *, reuse: bool = True) -> _Connection | None:
        """A kept connection to ``key`` (unless not ``reuse``), or None once the caller may open one: it then
        owns that place until ``opened`` or ``unreserve``. At the limit, an idle connection (to another
        origin, or any when not reusing) is closed to make room, or the caller waits for one to be given
        back or closed."""
        while True:
            idle = self._idle.get(key) if reuse else None
            while idle:
                connection = idle.pop()
                if not connection.lost:
                    connection.reused = True
                    self.in_use += 1
                    return connection
            if not self._limit or len(self._open) + self._opening < self._limit:
                self._opening += 1
                return None
            oldest = min((idle[0] for idle in self._idle.values() if idle), key=lambda c: c.idle_since,
                         default=None)
            if oldest is not None:
                oldest.abort()
                self.forget(oldest)
                continue
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def unreserve(self) -> None:
        self._opening -= 1
        self._wake_one()

    def opened(self, connection: _Connection) -> None:
        self._opening -= 1
        self._open.add(connection)
        self.in_use += 1

    def give_back(self, connection: _Connection) -> None:
        """A request is done with ``connection``: kept for the next one if it can be, else closed."""
        self.in_use -= 1
        if (connection.lost or not connection.keep_alive or connection.skip_body
                or connection.generation != self.current_generation()):
            connection.abort()
            self.forget(connection)
            return
        connection.busy = False
        connection.idle_since = self._clock()
        self._idle.setdefault(connection.key, []).append(connection)
        if self._sweep is None:
            self._sweep = asyncio.get_running_loop().call_later(self._idle_s, self._close_stale)
        self._wake_one()

    def drop(self, connection: _Connection) -> None:
        """A request is done with ``connection`` and it is not to be reused."""
        self.in_use -= 1
        connection.abort()
        self.forget(connection)

    def forget(self, connection: _Connection) -> None:
        """``connection`` is closed (or closing): no longer counted, never reused. Idempotent."""
        if connection not in self._open:
            return
        self._open.discard(connection)
        idle = self._idle.get(connection.key)
        if idle and connection in idle:
            idle.remove(connection)
            if not idle:
                del self._idle[connection.key]
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _close_stale(self) -> None:
        self._sweep = None
        now = self._clock()
        remaining = []
        for idle in list(self._idle.values()):
            for connection in list(idle):
                if now - connection.idle_since >= self._idle_s:
                    connection.abort()
                    self.forget(connection)
                else:
                    remaining.append(connection.idle_since)
        if remaining:
            delay = max(min(remaining) + self._idle_s - now, 0.05)
            self._sweep = asyncio.get_running_loop().call_later(delay, self._close_stale)

    def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for connection in list(self._open):
            connection.abort()
            self.forget(connection)


class _Stale(Exception):
    """A reused connection failed before a byte of the answer came, and its request may be sent again (see
    the module's docstring): it goes on a new one."""


class _ConnectFailed(Exception):
    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class H1Transport:
    def __init__(self, settings: Settings, guard: Guard, writes: WriteBatch | None = None) -> None:
        self._guard = guard
        self._writes = writes if writes is not None else WriteBatch()  # the process's one, from app.py
        self._resolver = guard.resolver()
        self._connect_s = settings.upstream_connect_timeout_s
        self._read_s = settings.upstream_read_timeout_s
        self._targets: dict[str, _Target] = {}
        self._pool = _Pool(settings.upstream_pool_size, IDLE_CONNECTION_S, lambda: self._resolver.generation)
        self._tls: ssl.SSLContext | None = None
        self._names: set[str] = set()  # header names already checked to be tokens

    def connections_in_use(self) -> int:
        return self._pool.in_use

    def connections_idle(self) -> int:
        return self._pool.idle_count()

    async def send(
        self, method: str, url: str, headers: dict[str, str] | CIMultiDict[str], body: bytes | None
    ) -> H1Response:
        target = self._target(url)
        addresses = await checked_addresses(self._guard, self._resolver, target.origin, target.server_name,
                                            target.address, target.port)
        request = self._request(method, target, headers, body)
        last = len(addresses) - 1
        for index, address in enumerate(addresses):
            key = ConnectionKey(target.scheme, target.host, target.port, address)
            try:
                return await self._exchange(key, target, request, method, headers)
            except _ConnectFailed as failed:
                if index == last:
                    raise failed.error from None
        raise AssertionError("unreachable: the guard returns at least one address")

    async def _exchange(self, key: ConnectionKey, target: _Target, request: tuple[bytes, ...], method: str,
                        headers: dict[str, str] | CIMultiDict[str]) -> H1Response:
        for fresh in (False, True):
            connection = await self._connection(key, target, reuse=not fresh)
            connection.begin(skip_body=method == "HEAD")
            assert connection.transport is not None
            written_at = connection.loop.time()
            self._writes.write(connection.loop, connection.transport, request)  # sent at the turn's end
            try:
                while not connection.head_done:
                    if connection.error is not None:
                        if connection.reused and not connection.received and (
                                connection.lost_at - written_at <= REPLAY_WINDOW_S
                                or replayable(method, headers)):
                            raise _Stale
                        raise connection.error
                    await connection.wait(self._read_s)
            except _Stale:
                self._pool.drop(connection)
                continue
            except BaseException:  # a failure, a timeout, or the caller gave up: the upstream sees it closed
                self._pool.drop(connection)
                raise
            try:
                return H1Response(self, connection)
            except DecodingFailed:
                self._pool.drop(connection)
                raise TransportError("ContentEncodingError") from None
        raise TransportError("ServerDisconnectedError")

    async def _connection(self, key: ConnectionKey, target: _Target, *, reuse: bool) -> _Connection:
        pool = self._pool
        generation = pool.current_generation()
        reused = await pool.take(key, reuse=reuse)
        if reused is not None:
            return reused
        try:
            connection = await self._open(key, target, generation)
        except BaseException:
            pool.unreserve()
            raise
        pool.opened(connection)
        return connection

    async def _open(self, key: ConnectionKey, target: _Target, generation: int) -> _Connection:
        loop = asyncio.get_running_loop()
        tls = self._tls_context() if key.scheme == "https" else None
        try:
            async with asyncio.timeout(self._connect_s):
                _, connection = await loop.create_connection(
                    lambda: _Connection(self._pool, key, generation), key.address, key.port, ssl=tls,
                    server_hostname=target.server_name if tls is not None else None,
                )
        except TimeoutError:
            raise _ConnectFailed(TransportTimeout("connect", self._connect_s, "ConnectTimeoutError")) from None
        except ssl.SSLError as tls_error:  # the certificate or the handshake: trying another address would not help
            raise TransportError("ConnectError", connect_reason=tls_error.reason or type(tls_error).__name__) from None
        except OSError as exc:  # the OS's words by its error number (asyncio's own loop words them its way)
            reason = os.strerror(exc.errno) if exc.errno else exc.strerror or type(exc).__name__
            raise _ConnectFailed(TransportError("ConnectError", connect_reason=reason)) from None
        return connection

    def _tls_context(self) -> ssl.SSLContext:
        """The system's roots (or ``SSL_CERT_FILE``'s), loaded on the first https origin, not at start."""
        if self._tls is None:
            context = ssl.create_default_context()
            context.set_alpn_protocols(["http/1.1"])
            self._tls = context
        return self._tls

    def _target(self, url: str) -> _Target:
        target = self._targets.get(url)
        if target is None:
            target = _Target(url)
            if len(self._targets) >= TARGET_CACHE_SIZE:
                del self._targets[next(iter(self._targets))]
            self._targets[url] = target
        return target

    def _request(self, method: str, target: _Target, headers: dict[str, str] | CIMultiDict[str],
                 body: bytes | None) -> tuple[bytes, ...]:
        """The request's bytes: its head (the wire of the module docstring), then its body."""
        lines = [f"{method} {target.target} HTTP/1.1\r\n"]
        names = set()
        for name, value in headers.items():
            lowered = name.lower()
            if lowered not in self._names:
                if not _TOKEN.fullmatch(lowered):
                    raise TransportError("InvalidHeaderName")
                if len(self._names) < 4096:
                    self._names.add(lowered)
            if CONTROL_CHARACTERS.search(value):
                raise TransportError("InvalidHeaderValue")
            if lowered in _FRAMING:
                continue
            names.add(lowered)
            lines.append(f"{lowered}: {value}\r\n")
        if takes_default_type(method, body) and "content-type" not in names:
            lines.append(f"content-type: {DEFAULT_CONTENT_TYPE}\r\n")
        if "accept" not in names:
            lines.append("accept: */*\r\n")
        if "user-agent" not in names:
            lines.append(f"user-agent: {USER_AGENT}\r\n")
        lines.append(f"host: {target.authority}\r\n")
        if body is not None:
            lines.append(f"content-length: {len(body)}\r\n\r\n")
            return "".join(lines).encode("utf-8", "surrogateescape"), body
        lines.append("content-length: 0\r\n\r\n" if declares_empty_body(method, body) else "\r\n")
        return ("".join(lines).encode("utf-8", "surrogateescape"),)

    async def close(self) -> None:
        self._pool.close()


class H1Response:
    __slots__ = ("_connection", "_decoder", "_done", "_slices", "_transport", "content_type", "headers",
                 "status")

    def __init__(self, transport: H1Transport, connection: _Connection) -> None:
        self._transport = transport
        self._connection = connection
        self._done = False
        self.status: int = connection.status
        self.headers: Iterable[tuple[str, str]] = connection.headers
        content_type = encoding = None
        for name, value in connection.headers:
            if name == "content-type" and content_type is None:
                content_type = value
            elif name == "content-encoding":  # every line of it: the list of codings (decoding.py)
                encoding = value if encoding is None else f"{encoding}, {value}"
        self.content_type = media_type(content_type)
        self._decoder: BodyDecoder | None = decoder_for(encoding)
        self._slices: Iterator[bytes] | None = None  # the decoded pieces of the last bytes taken, still to hand
        if encoding is not None:  # decoded here (or identity): the header no longer describes the bytes
            self.headers = [(name, value) for name, value in connection.headers if name != "content-encoding"]

    def announced_length(self) -> int | None:
        """The body's length as its Content-Length header announces it (none for the answer to a HEAD)."""
        if self._connection.skip_body:
            return None
        for name, value in self.headers:
            if name == "content-length":
                return int(value) if value.isdigit() else None
        return None

    async def read(self, limit: int) -> bytes:
        return await read_within(self, limit, self.announced_length() if self._decoder is None else None)

    async def read_chunk(self) -> bytes:
        """The next bytes as they arrive (decoded, if the upstream encoded them); b"" at the end."""
        connection = self._connection
        while not self._done:
            if self._slices is not None:  # one decoded piece at a time: a bomb never expands in one go
                try:
                    piece = next(self._slices, None)
                except DecodingFailed as exc:
                    self.close()
                    raise BodyBroken("ContentEncodingError") from exc
                if piece is None:
                    self._slices = None
                elif piece:
                    return piece
                continue
            if connection.chunks:
                raw = connection.take()
                if self._decoder is None:
                    return raw
                self._slices = self._decoder.slices(raw)
                continue
            if connection.complete:
                self._end()
                return b""
            if connection.error is not None:
                self.close()
                raise connection.error
            try:
                await connection.wait(self._transport._read_s)
            except BaseException:
                self.close()
                raise
        return b""

    def _end(self) -> None:
        self._done = True
        try:
            if self._decoder is not None:
                self._decoder.finish()
        except DecodingFailed as exc:
            self._transport._pool.drop(self._connection)
            raise BodyBroken("ContentEncodingError") from exc
        self._transport._pool.give_back(self._connection)

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._transport._pool.drop(self._connection)
