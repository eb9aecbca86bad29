"""The inference routes' common case served on the event loop by a lean protocol; anything else by aiohttp.

aiohttp's web layer costs a request more loop time than the rest of the hop's edge together: its request and
response objects, its writer, a task and two loop turns per request (docs/transport.md, "Experiment: the
server edge on the event loop"). ``NativeConnection`` sits where aiohttp's protocol would, behind the
connection guard (connections.py), and serves the requests that make up a gateway's traffic itself:

- a ``POST`` of HTTP/1.1 to one of its routes' paths exactly (routes.py's unified endpoints: origin form,
  no query), its head within ``HEAD_MAX`` bytes and ``HEADERS_MAX`` headers and parsed by llhttp, one
  ``Host``, no header twice, one decimal ``Content-Length`` and no ``Transfer-Encoding``, ``Expect``,
  ``Content-Encoding`` or ``Upgrade``,
  its body within ``BODY_MAX``.

Such a request runs the same middleware and route as on aiohttp's path (``edge_middleware`` and the route's
handler, given a ``NativeRequest``), and its ``web.Response`` is written with the headers aiohttp's
``prepare`` adds (``Content-Length``, a default ``Content-Type``, ``Date``, ``Server``, ``Connection:
close`` when the connection ends); a kept-alive connection's answer goes out with the other writes of the
loop's turn (write_batch.py), and everything this module writes or closes directly flushes that batch first,
so that answers keep their order and none is dropped. A stream's answer (server/streaming.py's relay) is a
``NativeStreamResponse``: its head as aiohttp's ``prepare`` writes a stream's (``Transfer-Encoding:
chunked`` in place of the length), sent with the first chunk, then each chunk framed as it comes (the last
with the end of the chunks, in one write), waiting while the client does not read. The first request that is
anything else (a malformed head too) hands the connection to aiohttp's own protocol with every byte not yet
served, for the rest of the connection's life: what aiohttp decides about it, it decides exactly as before.
The hand-over happens only between requests, so answers keep their order.

Also as on aiohttp's path: header text is decoded and written as aiohttp does it; a request whose body is on
its way runs from its head on (no head timer) and gets ``body_timeout_s`` for the body; requests of one
connection are served in order (pipelining); the handler is cancelled when the client leaves; no answer is
served while the client does not read the last (and one it takes none of for ``send_timeout_s`` is abandoned
by the connection guard in front, connections.py, as on aiohttp's path); an idle connection is closed after
``idle_timeout_s``; on shutdown idle connections close while running requests finish (connections.py's drain
bound applies).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httptools
from aiohttp import web
from aiohttp.helpers import parse_content_type, rfc822_formatted_time
from multidict import CIMultiDict, CIMultiDictProxy

from ..errors import InternalError, ShuttingDown, cut_by_shutdown
from ..foreground import Foreground
from ..header_names import CONTROL_CHARACTERS
from ..write_batch import WriteBatch
from .connections import ConnectionGuard
from .envelope import SERVER_NAME, error_response

log = logging.getLogger("sluicegate.server")

# aiohttp's limits for a request line and for one header field, and its most headers: a longer head, or one
# with more headers, goes to aiohttp, which applies them.
HEAD_MAX = 8190
HEADERS_MAX = 128
BODY_MAX = 1024 * 1024  # a larger body is streamed by aiohttp's path (its limit and body timeout apply there)
BUFFER_MAX = 2 * BODY_MAX  # bytes held while a request runs (pipelined ones) before reading pauses
_HEAD_END = b"\r\n\r\n"
_NATIVE_PREFIX = b"POST /v1/"  # every native path is under /v1
_REFUSED_HEADERS = frozenset({"transfer-encoding", "expect", "content-encoding", "upgrade", "sec-websocket-key1"})
_NO_CALLBACKS = object()  # what llhttp is given to call back: nothing
_SERVER = SERVER_NAME.encode()
# What a head's bytes may not hold but for its line ends (a tab, allowed in a value, takes the slow check).
_CONTROL_BYTES = bytes(range(0x20)) + b"\x7f"

Handler = Callable[[Any], Awaitable[web.StreamResponse]]
Edge = Callable[[Any, Handler], Awaitable[web.StreamResponse]]
Route = tuple[str, Handler]  # a native path and its handler


class _Body:
    """What server/bodies.py reads of a request's body stream: all of it, already received; or (None) a body
    that did not arrive within the body timeout, whose read fails as a timed-out one does on aiohttp's path."""

    __slots__ = ("_body",)

    def __init__(self, body: bytes | None) -> None:
        self._body = body

    def is_eof(self) -> bool:
        return self._body is not None

    def read_nowait(self) -> bytes:
        assert self._body is not None
        return self._body


class NativeRequest(dict):
    """What the middleware and the inference routes read of a request, and nothing else: the method, path,
    raw target, headers, the app, the body (``content``, ``content_length``, ``content_type``), the
    transport (the connection guard's key) and the request's own state (a dict, as aiohttp's Request is);
    and, for a stream, ``stream_response``."""

    __slots__ = ("_connection", "app", "content", "content_length", "headers", "keep_alive", "method", "path",
                 "raw_path", "streamed", "transport")

    def __init__(self, connection: NativeConnection, app: web.Application, path: str, headers: CIMultiDictProxy[str],
                 body: bytes | None, length: int, transport: asyncio.Transport, *, keep_alive: bool) -> None:
        super().__init__()
        self._connection, self.app = connection, app
        self.method, self.path, self.raw_path = "POST", path, path
        self.headers, self.content, self.content_length, self.transport = headers, _Body(body), length, transport
        self.keep_alive = keep_alive
        self.streamed: NativeStreamResponse | None = None  # the stream answer, once made

    def stream_response(self, status: int, headers: CIMultiDict[str]) -> NativeStreamResponse:
        """The answer a stream is relayed through, in place of aiohttp's ``web.StreamResponse``."""
        self.streamed = NativeStreamResponse(self._connection, status, headers)
        return self.streamed

    async def read(self) -> bytes:
        """Reached only for a body that did not come in time (server/bodies.py reads a whole one directly)."""
        raise TimeoutError

    @property
    def content_type(self) -> str:
        """As aiohttp's Request reads it, with aiohttp's own parser."""
        raw = self.headers.get("content-type")
        return "application/octet-stream" if raw is None else parse_content_type(raw)[0]


class NativeServer:
    """What every native connection of a worker shares: the routes, the middleware, the settings, and
    the connections themselves (for shutdown)."""

    def __init__(self, app: web.Application, edge: Edge, routes: Mapping[str, Handler], guard: ConnectionGuard,
                 *, idle_timeout_s: float, body_timeout_s: float, writes: WriteBatch,
                 foreground: Foreground | None = None) -> None:
        self.app, self.edge, self.guard = app, edge, guard
        # Requests from their start to their answer's first byte: the request log's drain waits for none to be
        # (foreground.py); one per process, shared with the log (app.py).
        self.foreground = foreground if foreground is not None else Foreground()
        self.writes = writes  # answers go out with the loop turn's other writes (write_batch.py)
        self.idle_timeout_s, self.body_timeout_s = idle_timeout_s, body_timeout_s
        self.routes: dict[bytes, Route] = {path.encode(): (path, handler) for path, handler in routes.items()}
        self.aiohttp_protocol: Callable[[], asyncio.Protocol] = _not_serving
        self.connections: set[NativeConnection] = set()
        self.draining = False
        self.running = 0  # requests being served
        self._none_running: asyncio.Event | None = None  # set when the last one ends, once draining

    def protocols(self, aiohttp_protocol: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """The protocol factory for a listening socket; ``aiohttp_protocol`` makes aiohttp's (hand-overs)."""
        self.aiohttp_protocol = aiohttp_protocol
        return lambda: NativeConnection(self)

    async def drained(self) -> None:
        """Shutdown, once no connection is accepted: idle connections close now, busy ones after their
        answer; returns when none is busy (serve.py's drain bound cancels what runs too long)."""
        self.draining = True
        for connection in list(self.connections):
            connection.close_if_idle()
        if self.running:
            self._none_running = asyncio.Event()
            await self._none_running.wait()

    def started(self) -> None:
        self.running += 1

    def finished(self) -> None:
        self.running -= 1
        if not self.running and self._none_running is not None:
            self._none_running.set()


class NativeStreamResponse(web.StreamResponse):
    """A stream's answer on a native connection, written as aiohttp's would be (chunked, its head as aiohttp's
    ``prepare`` makes it), with what the relay uses of a ``web.StreamResponse``: ``prepare``, ``write``,
    ``write_eof``. The head goes out with the first chunk, in one write; a write waits while the client does
    not read, and fails once the client has left."""

    def __init__(self, connection: NativeConnection, status: int, headers: CIMultiDict[str]) -> None:
        super().__init__(status=status, headers=headers)
        self._connection = connection
        self._head: bytes | None = None  # until it goes out with the first chunk
        self._begun = False
        self.sent = False  # whether its head went out: from then on, no other answer can
        self.ended = False

    @property
    def prepared(self) -> bool:
        return self._begun

    async def prepare(self, request: Any) -> None:
        if self._begun:
            return
        self._begun = True
        self._keep_alive = request.keep_alive
        self._head = _head(self.status, self.reason, self.headers, _STREAM_FRAMING, True, request.keep_alive)

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.ended:
            raise RuntimeError("Cannot call write() after write_eof()")
        if data:  # a chunk of no bytes would end the stream
            await self._send(_chunk(data))

    async def write_eof(self, data: bytes = b"") -> None:
        """The last chunk, if any, and the end of the chunks, in one write."""
        if self.ended:
            return
        self.ended = True
        await self._send(_chunk(data) + _LAST_CHUNK if data else _LAST_CHUNK)

    async def _send(self, framed: bytes) -> None:
        head, self._head = self._head, None
        self.sent = True
        await self._connection.send_streamed(framed if head is None else head + framed)


_LAST_CHUNK = b"0\r\n\r\n"  # the end of a chunked body (no trailers)


def _chunk(data: bytes | bytearray | memoryview) -> bytes:
    """``data`` framed as one chunk of a chunked body."""
    return b"".join((b"%x\r\n" % len(data), data, b"\r\n"))


NATIVE = web.AppKey("native", NativeServer)  # absent when the access log is on


def _not_serving() -> asyncio.Protocol:
    raise RuntimeError("the native server hands connections over only once it serves a socket")


class NativeConnection(asyncio.Protocol):
    """One client connection: native requests served one at a time, until it is handed to aiohttp."""

    def __init__(self, server: NativeServer) -> None:
        self._server = server
        # Made by a protocol factory, in the loop. Held: on Python 3.11 each get_running_loop() is a getpid()
        # system call, and a request asked for it several times.
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._aiohttp: asyncio.Protocol | None = None  # set once the connection is handed over
        self._buffer = bytearray()
        self._task: asyncio.Task[None] | None = None  # the request being served
        self._reading_paused = False
        self._writing_paused = False
        self._idle_since: float | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._body_ready: asyncio.Future[None] | None = None  # while a native request's body is on its way
        self._body_end = 0  # how many buffered bytes make that body whole
        self._writable: asyncio.Future[None] | None = None  # a stream's write waiting for the client to read
        self._in_foreground = False  # its request has not yet sent a first byte (foreground.py)

    # -- asyncio's protocol ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self._aiohttp is not None:
            self._aiohttp.data_received(data)
            return
        self._idle_since = None
        self._buffer += data
        ready = self._body_ready
        if ready is not None and len(self._buffer) >= self._body_end and not ready.done():
            ready.set_result(None)
        if self._task is None and not self._writing_paused:
            self._serve_next()
        elif len(self._buffer) > BUFFER_MAX and not self._reading_paused:
            self._reading_paused = True
            assert self._transport is not None
            self._transport.pause_reading()

    def eof_received(self) -> bool | None:
        if self._aiohttp is not None:
            return self._aiohttp.eof_received()
        return None  # the transport closes: a request still running is cancelled (connection_lost)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connections.discard(self)
        self._stop_idle_timer()
        if self._aiohttp is not None:
            self._aiohttp.connection_lost(exc)
        elif self._task is not None:
            self._task.cancel()  # as aiohttp's handler_cancellation: the upstream call is aborted
        self._wake_writer()

    def pause_writing(self) -> None:
        if self._aiohttp is not None:
            self._aiohttp.pause_writing()
            return
        self._writing_paused = True  # a client that does not read its answers gets no further one meanwhile

    def resume_writing(self) -> None:
        if self._aiohttp is not None:
            self._aiohttp.resume_writing()
            return
        self._writing_paused = False
        self._wake_writer()
        if self._task is None:
            self._next_or_idle()

    # -- serving ---------------------------------------------------------------------------------------

    def close_if_idle(self) -> None:
        if self._task is None and self._aiohttp is None and self._transport is not None:
            self._server.writes.flush()  # its last answer may still wait in the batch
            self._transport.close()

    def _serve_next(self) -> None:
        """Between requests: take the next one if it is native and whole; hand the connection over if it is
        not native."""
        if self._server.draining:  # none is taken now
            if self._buffer:
                self._hand_over()
            else:
                self.close_if_idle()
            return
        self._take_next()

    def _take_next(self) -> None:
        buffer = self._buffer
        if not buffer:
            return
        head_end = buffer.find(_HEAD_END, 0, HEAD_MAX + len(_HEAD_END))
        if head_end < 0:
            if len(buffer) > HEAD_MAX or not _may_be_native(buffer):
                self._hand_over()
            return  # wait for the rest of the head
        body_start = head_end + len(_HEAD_END)
        request = self._native_head(bytes(buffer[:body_start]))
        if request is None:
            self._hand_over()
            return
        route, headers, length, keep_alive = request
        if len(buffer) < body_start + length:
            self._await_body(body_start + length)
            return
        body = bytes(buffer[body_start:body_start + length])
        del buffer[:body_start + length]
        self._start(route, headers, body, length, keep_alive=keep_alive)

    def _start(self, route: Route, headers: CIMultiDictProxy[str], body: bytes | None, length: int, *,
               keep_alive: bool) -> None:
        self._server.started()  # now, not when the task first runs: a drain must not miss it
        self._server.foreground.enter()
        self._in_foreground = True
        self._task = self._loop.create_task(self._serve(route, headers, body, length, keep_alive))

    # -- a body on its way ---------------------------------------------------------------------------------

    def _await_body(self, body_end: int) -> None:
        """As on aiohttp's path, where the handler starts with the head: the request runs from here (no head
        timer from the connection guard; shutdown's drain bound cancels it) and its body has
        ``body_timeout_s`` to arrive."""
        loop = self._loop
        self._body_end, self._body_ready = body_end, loop.create_future()
        self._server.started()
        self._task = loop.create_task(self._wait_for_body(self._body_ready))

    async def _wait_for_body(self, ready: asyncio.Future[None]) -> None:
        transport = self._transport
        assert transport is not None
        guarded = self._server.guard.connection_of(transport)
        if guarded is not None:
            guarded.request_started(asyncio.current_task(self._loop))
        try:
            late = False
            try:
                async with asyncio.timeout(self._server.body_timeout_s):
                    await ready
            except TimeoutError:
                late = True
            except asyncio.CancelledError:  # the client left, or shutdown's drain bound passed
                self._server.writes.flush()
                transport.close()
                raise
            finally:
                self._body_ready, self._task = None, None
                if guarded is not None:
                    guarded.request_finished()
            if late:
                self._answer_late_body()
            elif not self._writing_paused:
                self._take_next()  # whole now: served here (a drain waits for it), or handed to aiohttp
        finally:
            self._server.finished()  # after the request it became has started

    def _answer_late_body(self) -> None:
        """The body did not come in time: the route answers 408 as it does on aiohttp's path (server/bodies.py),
        and the connection closes after it (what is left of the body cannot be told from a next request)."""
        head_end = self._buffer.find(_HEAD_END)
        request = self._native_head(bytes(self._buffer[:head_end + len(_HEAD_END)]))
        assert request is not None  # the head that started the wait
        self._buffer.clear()
        route, headers, length, _ = request
        self._start(route, headers, None, length, keep_alive=False)

    def _native_head(self, head: bytes) -> tuple[Route, CIMultiDictProxy[str], int, bool] | None:
        """(route, headers, body length, keep-alive as llhttp reads the head: what aiohttp's parser decides)
        when the head is one native requests have; else None."""
        line_end = head.find(b"\r\n")
        method, _, rest = head[:line_end].partition(b" ")
        target, _, version = rest.partition(b" ")
        route = self._server.routes.get(target)
        if method != b"POST" or version != b"HTTP/1.1" or route is None or head.count(b"\n") != head.count(b"\r\n"):
            return None
        parser = httptools.HttpRequestParser(_NO_CALLBACKS)  # llhttp judges the head; the fields are split below
        try:
            parser.feed_data(head)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):  # upgrades are aiohttp's to refuse
            return None
        # Once llhttp took it, every line is "name:value" with a token name. Decoded and trimmed as aiohttp's
        # parser does it (llhttp drops the whitespace before a value, aiohttp the whitespace after it), so that
        # a route reads the same text on either path. (str.split and partition: Python's regular expressions
        # took longer for these lines.)
        lines = head[line_end + 2:-4].decode("utf-8", "surrogateescape").split("\r\n")
        fields = [(name, value.strip(" \t")) for name, _, value in (line.partition(":") for line in lines)]
        names = {name.lower() for name, _ in fields}
        # No name twice: then "host" and the length once each, and the names tell the rest.
        if (len(names) != len(fields) or len(fields) > HEADERS_MAX or "host" not in names
                or "content-length" not in names or not _REFUSED_HEADERS.isdisjoint(names)):
            return None  # aiohttp answers these (a missing Host, a repeated header it allows once, …) or streams them
        headers = CIMultiDict(fields)
        length_text = headers["content-length"]
        if not (length_text.isascii() and length_text.isdigit()):
            return None
        length = int(length_text)
        if length > BODY_MAX:
            return None
        return route, CIMultiDictProxy(headers), length, parser.should_keep_alive()

    def _hand_over(self) -> None:
        """aiohttp's protocol serves this connection from here on, starting with the bytes not yet served."""
        transport = self._transport
        assert transport is not None and self._task is None
        self._server.writes.flush()  # aiohttp's answers write directly: none may overtake a batched one
        self._stop_idle_timer()
        self._server.connections.discard(self)
        handler = self._aiohttp = self._server.aiohttp_protocol()
        handler.connection_made(transport)
        if self._writing_paused:  # the transport will tell aiohttp's protocol when it may write again
            handler.pause_writing()
        pending, self._buffer = bytes(self._buffer), bytearray()
        self._resume_reading()
        if pending:
            handler.data_received(pending)

    async def _serve(self, route: Route, headers: CIMultiDictProxy[str], body: bytes | None, length: int,
                     keep_alive: bool) -> None:
        transport = self._transport
        assert transport is not None
        server = self._server
        path, handler = route
        keep_alive = keep_alive and not server.draining
        request = NativeRequest(self, server.app, path, headers, body, length, transport, keep_alive=keep_alive)
        try:
            response = await server.edge(request, handler)
            streamed = request.streamed
            if streamed is not None and streamed.sent:  # the answer went out as it came
                answer = b""
                keep_alive = keep_alive and response is streamed and streamed.ended  # else it cannot be whole
            else:
                answer = _serialized(response, keep_alive)
        except asyncio.CancelledError as cancelled:  # the client left, or shutdown's drain bound passed
            streamed = request.streamed
            server.writes.flush()
            if cut_by_shutdown(cancelled) and not (streamed is not None and streamed.sent):
                transport.write(_serialized(error_response(ShuttingDown(), None), False))  # unanswered: a 503
            transport.close()
            raise
        except Exception:  # an answer aiohttp could not have written either (a control character in a header)
            log.exception("could not write the answer to %s %s", request.method, path)
            answer = _serialized(error_response(InternalError(), None), keep_alive)
        finally:
            self._task = None
            server.finished()
            self._answer_begins()
        if transport.is_closing():
            return
        if not keep_alive:
            server.writes.flush()
            if answer:
                transport.write(answer)
            transport.close()
            return
        if answer:
            server.writes.write(self._loop, transport, answer)
        if self._writing_paused:  # resume_writing serves what waits
            return
        self._next_or_idle()

    def _answer_begins(self) -> None:
        """Its first byte is ready (a stream's head and first chunk, a whole answer), or it ended without one."""
        if self._in_foreground:
            self._in_foreground = False
            self._server.foreground.leave()

    async def send_streamed(self, data: bytes) -> None:
        """Write part of a stream's answer, once the client reads (a ConnectionResetError once it has left, as
        aiohttp's writer raises: the relay ends there)."""
        self._answer_begins()
        while self._writing_paused and not self._closing():
            self._writable = self._loop.create_future()
            await self._writable
        if self._closing():
            raise ConnectionResetError("Cannot write to closing transport")
        assert self._transport is not None
        self._server.writes.flush()  # a stream's chunks go out as they come, after any answer batched before
        self._transport.write(data)

    def _closing(self) -> bool:
        return self._transport is None or self._transport.is_closing()

    def _wake_writer(self) -> None:
        waiting, self._writable = self._writable, None
        if waiting is not None and not waiting.done():
            waiting.set_result(None)

    def _next_or_idle(self) -> None:
        """No request runs and answers can be written: read again, and serve what waits or go idle."""
        self._resume_reading()
        if self._buffer:
            self._serve_next()
        else:
            self._idle()

    def _resume_reading(self) -> None:
        if self._reading_paused and self._transport is not None:
            self._reading_paused = False
            self._transport.resume_reading()

    # -- the idle bound --------------------------------------------------------------------------------

    def _idle(self) -> None:
        """Between requests: closed after idle_timeout_s without a byte (one timer, re-armed only when it
        fires, as the connection guard's head timer: a timer per request costs more than the bound)."""
        if self._server.draining:
            self.close_if_idle()
            return
        loop = self._loop
        self._idle_since = loop.time()
        if self._idle_timer is None:
            self._idle_timer = loop.call_later(self._server.idle_timeout_s, self._idle_expired)

    def _idle_expired(self) -> None:
        self._idle_timer = None
        since = self._idle_since
        if since is None or self._task is not None:  # busy since: armed again when it next goes idle
            return
        left = since + self._server.idle_timeout_s - self._loop.time()
        if left > 0:
            self._idle_timer = self._loop.call_later(left, self._idle_expired)
            return
        self.close_if_idle()

    def _stop_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None


def _may_be_native(partial_head: bytearray) -> bool:
    """Whether an incomplete head could still be a native request's: anything else goes to aiohttp at once
    (whose parser may answer a malformed request line before the head is complete)."""
    line = bytes(partial_head[:HEAD_MAX]).partition(b"\r\n")[0]
    return line.startswith(_NATIVE_PREFIX) or _NATIVE_PREFIX.startswith(line)


_STREAM_FRAMING = b"Transfer-Encoding: chunked\r\n"
_FRAMING_HEADERS = ("content-length", "transfer-encoding")  # the answer's own are replaced by the head's framing


def _serialized(response: web.StreamResponse, keep_alive: bool) -> bytes:
    """The answer's bytes, with what aiohttp's ``prepare`` adds to a complete response's headers."""
    assert isinstance(response, web.Response)
    body = response.body
    assert body is None or isinstance(body, bytes)
    status = response.status
    empty = status < 200 or status in (204, 304)  # no body, and no length to say so (RFC 9110 8.6)
    body = b"" if empty or body is None else body
    framing = b"" if empty else b"Content-Length: %d\r\n" % len(body)
    return _head(status, response.reason, response.headers, framing, bool(body), keep_alive) + body


def _head(status: int, reason: str, headers: CIMultiDictProxy[str] | CIMultiDict[str], framing: bytes,
          has_body: bool, keep_alive: bool) -> bytes:
    """An answer's head: its own headers (but a length or framing of theirs), ``framing`` (how its body is
    delimited), then what aiohttp's ``prepare`` adds: a default ``Content-Type`` when it has a body,
    ``Date``, ``Server``, ``Connection: close`` when the connection ends with it. Written as aiohttp's writer
    writes headers: control characters (but tab) refused, lone surrogates (bytes that were not UTF-8, kept by
    the parser's surrogateescape) left out; checked and encoded once for the whole head."""
    items = list(headers.items())
    if "content-length" in headers or "transfer-encoding" in headers:
        items = [(name, value) for name, value in items if name.lower() not in _FRAMING_HEADERS]
    fields = "".join(("\r\n".join(map(": ".join, items)), "\r\n")) if items else ""
    # The common head is ASCII and holds no control byte but its own line ends (counted in C: str.isprintable
    # reads the Unicode tables character by character, 5 µs a head); only another one is checked header by
    # header.
    if fields.isascii():
        raw = fields.encode("ascii")
        common = len(raw) - len(raw.translate(None, _CONTROL_BYTES)) == 2 * len(items)
    else:
        raw = fields.encode("utf-8", "ignore")
        common = fields.count("\r\n") == len(items) and fields.replace("\r\n", " ").isprintable()
    if not common and any(
            CONTROL_CHARACTERS.search(name) or CONTROL_CHARACTERS.search(value) for name, value in items):
        raise ValueError("a header name or value holds a control character")
    added = [framing]
    if has_body and "content-type" not in headers:
        added.append(b"Content-Type: application/octet-stream\r\n")
    if "date" not in headers:
        added.append(b"Date: " + rfc822_formatted_time().encode() + b"\r\n")
    if "server" not in headers:
        added.append(b"Server: " + _SERVER + b"\r\n")
    if not keep_alive and "connection" not in headers:
        added.append(b"Connection: close\r\n")
    added.append(b"\r\n")
    return f"HTTP/1.1 {status} {reason}\r\n".encode("utf-8", "ignore") + raw + b"".join(added)
