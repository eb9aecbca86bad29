"""Client connections: how many a process holds, and how long one may keep it waiting for a request.

Every accepted connection is wrapped in a ``_Guarded`` protocol in front of aiohttp's own handler:

- a request head (request line and headers) must be complete within ``header_timeout_s`` of the
  connection opening, or of its first byte on a kept-alive connection; a slowloris that trickles its head
  byte by byte is closed then;
- between requests aiohttp's ``keepalive_timeout`` (``idle_timeout_s``, set in serve.py) closes idle
  connections; the body of a request is bounded in server/bodies.py (``body_timeout_s``);
- at most ``max_connections`` are open: beyond it the connection that has waited longest for a request
  (idle or still sending its head) is closed to make room, and when every connection is busy the new one
  gets a 503 and is closed;
- an answer the client does not take is abandoned: while the transport holds more than its high-water mark
  (writing is paused: a stream's next write, aiohttp's drain, the rest of a whole answer all wait), a timer
  looks every ``send_timeout_s`` whether the client took any of it (it acknowledged more bytes, or else the
  buffer shrank); when it took none, the request still running is cancelled with ``SEND_STALLED`` (its
  stream's upstream is closed, the log records a client that left, 499) and the connection is reset.
  Without it a client that stops reading held its connection, and a stream's upstream connection, for ever.

The app's middleware (middleware.py) tells a connection when a request starts and ends: while one runs,
no timer applies. The head timer is armed once and re-armed only when it fires (to the rest of the current
head's time, if one is being received), not per request: under load a kept-alive connection starts a head
every few hundred microseconds, and a timer armed and cancelled for each cost ~1.7 µs (uvloop), against
0.07 µs to note the time.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import orjson
from aiohttp import web

from ..errors import SEND_STALLED, SHUTDOWN_CUT
from ..write_batch import WriteBatch
from .malformed import enveloped_refusals

_REFUSAL_BODY = orjson.dumps({"status": "failure",
                              "message": "The gateway is at its connection limit; try again shortly"})
REFUSAL = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n"
           b"content-length: %d\r\n\r\n" % len(_REFUSAL_BODY)) + _REFUSAL_BODY
_NO_LINGER = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() resets the connection
_EVICTION_SCAN = 16  # waiting connections looked at for one that is not still writing an answer


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_connections: int = 1000
    header_timeout_s: float = 10.0
    send_timeout_s: float = 30.0


class ConnectionGuard:
    """The process's client connections, the waiting ones (no request running) longest-waiting first."""

    def __init__(self, limits: ConnectionLimits, writes: WriteBatch | None = None) -> None:
        self.limits = limits
        self.writes = writes if writes is not None else WriteBatch()  # the process's one, from app.py
        self._open: dict[asyncio.BaseTransport, _Guarded] = {}
        self._waiting: dict[_Guarded, None] = {}

    def protocol_factory(self, make_handler: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """What ``loop.create_server`` calls per connection; ``make_handler`` builds aiohttp's handler."""
        return lambda: _Guarded(self, make_handler)

    def started(self, request: web.Request) -> _Guarded | None:
        """Tell ``request``'s connection that a request runs (its ``request_finished`` ends it); None for
        in-process test servers, which have no guarded site."""
        transport = request.transport
        connection = self._open.get(transport) if transport is not None else None
        if connection is not None:
            # The task running this request's handler (``request.task`` is the connection's task instead).
            connection.request_started(asyncio.current_task(connection.loop))
        return connection

    def connection_of(self, transport: asyncio.BaseTransport) -> _Guarded | None:
        return self._open.get(transport)

    def cancel_requests(self) -> int:
        """Cancel every request still running (on shutdown, once the drain bound is over); how many."""
        tasks = [connection.task for connection in self._open.values() if connection.task is not None]
        for task in tasks:
            task.cancel(SHUTDOWN_CUT)  # told apart from a client that left (streams, the log)
        return len(tasks)

    def admit(self, connection: _Guarded, transport: asyncio.BaseTransport) -> bool:
        if len(self._open) >= self.limits.max_connections and not self._evict_one():
            return False
        self._open[transport] = connection
        self.waiting(connection)
        return True

    def _evict_one(self) -> bool:
        for index, connection in enumerate(self._waiting):
            if index == _EVICTION_SCAN:
                break
            if not connection.writing():
                connection.close()
                return True
        return False

    def waiting(self, connection: _Guarded) -> None:
        self._waiting.pop(connection, None)
        self._waiting[connection] = None  # to the end: the most recent to start waiting

    def busy(self, connection: _Guarded) -> None:
        self._waiting.pop(connection, None)

    def forget(self, connection: _Guarded, transport: asyncio.BaseTransport | None) -> None:
        self._waiting.pop(connection, None)
        if transport is not None:
            self._open.pop(transport, None)


class _Guarded(asyncio.Protocol):
    """One connection: aiohttp's handler behind a head timer and the process-wide count."""

    def __init__(self, guard: ConnectionGuard, make_handler: Callable[[], asyncio.Protocol]) -> None:
        self._guard = guard
        # Made by a protocol factory, in the loop. Held: on Python 3.11 each get_running_loop() is a getpid()
        # system call, and a request asked for it several times.
        self.loop = asyncio.get_running_loop()
        self._make_handler = make_handler
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._head_since: float | None = None  # loop time the current request head began (None: not in one)
        self._running = 0  # requests running (the middleware's count)
        self._send_timer: asyncio.TimerHandle | None = None  # armed while writing is paused
        self._send_mark: _Progress = (None, 0)  # how far the client had got when the send timer was armed
        self.task: asyncio.Task | None = None  # the task running the current request

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        if not self._guard.admit(self, transport):
            transport.write(REFUSAL)  # type: ignore[attr-defined]
            transport.close()
            return
        self._inner = self._make_handler()
        self._head_started()  # a new connection is expected to send its request head right away
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._inner is None:
            return
        if self._head_since is None and not self._running:  # the first byte of the next request head
            self._head_started()
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._disarm_send()
        self._guard.forget(self, self._transport)
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._arm_send()
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._disarm_send()
        if self._inner is not None:
            self._inner.resume_writing()

    # -- told by the middleware, and by the guard -------------------------------------------------

    def request_started(self, task: asyncio.Task | None) -> None:
        self.task = task
        self._running += 1
        self._head_since = None  # the timer, if armed, finds no head when it fires
        self._guard.busy(self)

    def request_finished(self) -> None:
        self._running -= 1
        self.task = None
        if not self._running and self._transport is not None and not self._transport.is_closing():
            self._guard.waiting(self)

    def writing(self) -> bool:
        transport = self._transport
        # An answer still in the loop turn's batch is being written too: evicting its connection would drop it.
        return transport is not None and (transport.get_write_buffer_size() > 0
                                          or self._guard.writes.holds(transport))

    def close(self) -> None:
        self._guard.forget(self, self._transport)
        if self._transport is not None:
            self._transport.close()

    # -- the head timer -----------------------------------------------------------------------------

    def _head_started(self) -> None:
        self._head_since = self.loop.time()
        if self._timer is None:
            self._arm(self._guard.limits.header_timeout_s)

    def _arm(self, delay: float) -> None:
        self._timer = self.loop.call_later(delay, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self._head_since is None:  # a request runs, or the connection is idle (aiohttp's keep-alive bound)
            return
        left = self._head_since + self._guard.limits.header_timeout_s - self.loop.time()
        if left > 0:  # armed for an earlier head: this one still has time
            self._arm(left)
            return
        if self.writing():  # still sending the last answer to a slow reader: not the client's silence
            self._head_started()  # a full head time from now (no timer is armed here)
            return
        self.close()

    # -- the send bound -------------------------------------------------------------------------------

    def _arm_send(self) -> None:
        """Writing paused: the client has not taken what was written. Armed only then (rare: a slow or
        stalled reader), so a request that is answered at once never pays for a timer."""
        if self._send_timer is None and self._transport is not None:
            self._send_mark = _progress(self._transport)
            self._send_timer = self.loop.call_later(self._guard.limits.send_timeout_s, self._send_expired)

    def _disarm_send(self) -> None:
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None

    def _send_expired(self) -> None:
        self._send_timer = None
        transport = self._transport
        if transport is None:
            return
        if transport.get_write_buffer_size() == 0:  # all taken (resume_writing is on its way)
            return
        (acked, left), (acked_before, left_before) = _progress(transport), self._send_mark
        if (left < left_before if acked is None or acked_before is None else acked > acked_before):
            self._arm_send()  # the client took some: another period
            return
        task = self.task
        if task is not None and not task.done():  # told apart from a client that left (the log says why)
            task.cancel(SEND_STALLED)
        # Reset, not closed: a close leaves the unsent bytes and the FIN behind them to the kernel, which holds
        # them (FIN-WAIT-1) for as long as the client's window stays shut; with no lingering the client gets
        # a reset and the buffers go at once.
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _NO_LINGER)
        # Aborted after the request's task has seen its cancellation (ready callbacks run in order): the
        # transport's own connection_lost cancels it again, without the reason, and closing would wait for
        # the client to read.
        self.loop.call_soon(transport.abort)


_Progress = tuple[int | None, int]
_TCP_INFO = getattr(socket, "TCP_INFO", None)  # Linux's
_BYTES_ACKED = 120  # the offset of tcp_info's tcpi_bytes_acked (Linux 4.1 and later), a 64-bit count


def _progress(transport: asyncio.Transport) -> _Progress:
    """How far a client has got in what the gateway wrote: (the bytes it acknowledged, from the kernel's
    tcp_info, or None where that is not known; the bytes still waiting in the transport's buffer). The first
    grows only when the client takes bytes; the second, the fallback, also grows when the gateway writes more
    (aiohttp's writer adds up to 64 KiB before it waits to drain)."""
    left = transport.get_write_buffer_size()
    sock = transport.get_extra_info("socket")
    if sock is None or _TCP_INFO is None:
        return None, left
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _BYTES_ACKED + 8)
    except OSError:
        return None, left
    if len(info) < _BYTES_ACKED + 8:  # a kernel older than the field
        return None, left
    return struct.unpack_from("=Q", info, _BYTES_ACKED)[0], left


CONNECTIONS = web.AppKey("connections", ConnectionGuard)


class FrontEdge(Protocol):
    """What serves connections before aiohttp's protocol does (server/native.py's NativeServer)."""

    def protocols(self, aiohttp_protocol: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]: ...

    async def drained(self) -> None: ...


class GuardedSite(web.BaseSite):
    """A TCP listening site (as aiohttp's TCPSite) whose connections go through a ConnectionGuard."""

    def __init__(self, runner: web.AppRunner, guard: ConnectionGuard, host: str, port: int, *,
                 reuse_port: bool, backlog: int, native: FrontEdge | None = None) -> None:
        super().__init__(runner, backlog=backlog)
        self._app_runner, self._guard, self._native = runner, guard, native
        self._host, self._port, self._reuse_port = host, port, reuse_port

    @property
    def name(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._app_runner.server
        assert server is not None  # the runner is set up before any site starts
        aiohttp_protocol = enveloped_refusals(server)
        protocol = aiohttp_protocol if self._native is None else self._native.protocols(aiohttp_protocol)
        self._server = await asyncio.get_running_loop().create_server(
            self._guard.protocol_factory(protocol), self._host, self._port,
            backlog=self._backlog, reuse_port=self._reuse_port,
        )

    async def stop(self) -> None:
        """No new connection; then the native edge's requests finish (aiohttp drains its own after this)."""
        await super().stop()
        if self._native is not None:
            await self._native.drained()
