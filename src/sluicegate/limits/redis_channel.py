"""One multiplexed connection to Redis for the limiter's script calls, packed and parsed in C by hiredis.

redis-py spends about 100 µs of CPU on each command (a pooled connection taken and given back under a
lock, the arguments encoded one by one, a parser object per reply), as much as the rest of a request. The
limiter sends one kind of command on the request path, its script by SHA, so it has a channel of its own:
one connection per process, commands pipelined with whatever is in flight (those of one turn of the event
loop after its first joined in one write) and the replies matched to their callers in order, as Redis
answers in order. Everything else the limits do (loading the script, resets, reads for the admin API)
still goes through redis-py.

Failures: a connection that breaks fails every call waiting on it with ``ChannelBroken`` and the next call
opens a new one (after a Redis restart the first call on the old socket fails: callers may retry once).
A reply that takes longer than ``timeout_s`` aborts the connection and fails every call on it with
``ChannelTimeout``: a Redis that stops answering costs a request at most the timeout, never a hang. An
error reply (``-NOSCRIPT …``) is returned as a ``hiredis.ReplyError`` instance, not raised.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable
from typing import Any, cast

import hiredis


class ChannelBroken(ConnectionError):
    """The connection was lost (or could not be opened) before the reply came."""


class ChannelTimeout(TimeoutError):
    """No reply within the timeout: the connection was aborted."""


class _Connection(asyncio.Protocol):
    def __init__(self, on_lost: Callable[[_Connection], None]) -> None:
        self._reader = hiredis.Reader()
        self._on_lost = on_lost
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.transport: asyncio.Transport | None = None
        self.failure: Exception | None = None  # what the calls still waiting get when the connection ends
        self._unsent: list[bytes] = []  # commands sent in this turn of the loop after its first (_flush)
        self._gathering = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport subclasses

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        try:
            while (reply := self._reader.gets()) is not False:
                waiter = self.waiting.popleft()
                if not waiter.done():
                    waiter.set_result(reply)
        except (hiredis.ProtocolError, IndexError):  # not Redis speaking, or a reply nobody asked for
            self.abort(ChannelBroken("the limits store (Redis) sent a reply that cannot be read"))

    def connection_lost(self, exc: Exception | None) -> None:
        failure = self.failure or ChannelBroken("the connection to the limits store (Redis) was lost")
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_exception(failure)
        self._on_lost(self)

    def abort(self, failure: Exception) -> None:
        self.failure = self.failure or failure
        self._on_lost(self)  # the next call opens a new connection, without waiting for this one to end
        if self.transport is not None:
            self.transport.abort()

    @property
    def usable(self) -> bool:
        """Open and not closing (a peer that went away closes the transport before connection_lost runs)."""
        return self.transport is not None and not self.transport.is_closing()

    def send(self, packed: bytes, count: int) -> list[asyncio.Future[Any]]:
        if self.transport is None or self.transport.is_closing():
            raise ChannelBroken("the connection to the limits store (Redis) is closing")
        loop = asyncio.get_running_loop()
        waiters = [loop.create_future() for _ in range(count)]
        self.waiting.extend(waiters)
        if self._gathering:  # an earlier command went out in this turn of the loop: join the next write
            self._unsent.append(packed)
        else:  # the first in this turn goes at once (a lone request waits for nothing)
            self.transport.write(packed)
            self._gathering = True
            loop.call_soon(self._flush)
        return waiters

    def _flush(self) -> None:
        """The commands of one turn of the loop after its first, in one write: under load many requests
        reach the limiter in the same turn, and one write in place of one each saves system calls here and
        reads in Redis (measured: +3-9 % req/s with limits on at c=50, docs/benchmarks.md)."""
        self._gathering = False
        if self._unsent:
            data, self._unsent = b"".join(self._unsent), []
            if self.transport is not None and not self.transport.is_closing():
                self.transport.write(data)  # else the connection is ending: its waiters get its failure


class RedisChannel:
    def __init__(self, url: str, *, timeout_s: float, connect_timeout_s: float) -> None:
        from redis.connection import SSLConnection, parse_url

        self._options = parse_url(url)
        self._tls = self._options.get("connection_class") is SSLConnection
        self._timeout_s, self._connect_timeout_s = timeout_s, connect_timeout_s
        self._connection: _Connection | None = None
        self._opening = asyncio.Lock()

    async def call(self, *parts: Any) -> Any:
        """One command's reply (an error reply as a ``hiredis.ReplyError`` instance)."""
        (reply,) = await self.call_many([parts])
        return reply

    async def call_many(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Several commands in one write; their replies in the same order."""
        connection = self._connection
        if connection is None or not connection.usable:
            connection = await self._open()
        packed = b"".join(hiredis.pack_command(parts) for parts in commands)
        waiters = connection.send(packed, len(commands))
        timer = asyncio.get_running_loop().call_later(
            self._timeout_s, connection.abort,
            ChannelTimeout(f"the limits store (Redis) did not answer within {self._timeout_s:g} s"))
        try:
            if len(waiters) == 1:
                return [await waiters[0]]
            return list(await asyncio.gather(*waiters))  # every failure retrieved, not only the first
        finally:
            timer.cancel()

    async def close(self) -> None:
        if self._connection is not None and self._connection.transport is not None:
            self._connection.transport.close()
        self._connection = None

    async def _open(self) -> _Connection:
        async with self._opening:  # callers arriving together share one new connection
            if self._connection is not None and self._connection.usable:
                return self._connection
            try:
                connection = await asyncio.wait_for(self._connect(), self._connect_timeout_s)
            except ChannelBroken:  # it says why already (a refused AUTH)
                raise
            except (TimeoutError, OSError) as exc:
                raise ChannelBroken(f"the limits store (Redis) cannot be reached: {type(exc).__name__}") from None
            self._connection = connection
            return connection

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        options = self._options

        def forget(lost: _Connection) -> None:
            if self._connection is lost:
                self._connection = None

        def made() -> _Connection:
            return _Connection(forget)

        if "path" in options:
            _, connection = await loop.create_unix_connection(made, options["path"])
        else:
            context = ssl.create_default_context() if self._tls else None
            _, connection = await loop.create_connection(made, options.get("host", "localhost"),
                                                         options.get("port", 6379), ssl=context)
        setup: list[tuple[Any, ...]] = []
        if options.get("password"):
            setup.append(("AUTH", *([options["username"]] if options.get("username") else []),
                          options["password"]))
        if options.get("db"):
            setup.append(("SELECT", options["db"]))
        if not setup:
            return connection
        try:
            waiters = connection.send(b"".join(hiredis.pack_command(parts) for parts in setup), len(setup))
            replies = [await waiter for waiter in waiters]
        except BaseException:  # the connect timeout cancelled the handshake: leave no socket behind
            connection.abort(ChannelBroken("the limits store (Redis) did not finish the handshake"))
            raise
        refused = next((reply for reply in replies if isinstance(reply, hiredis.ReplyError)), None)
        if refused is not None:  # never the password: Redis's words only
            connection.abort(ChannelBroken("the limits store (Redis) refused the connection"))
            raise ChannelBroken(f"the limits store (Redis) refused the connection: {str(refused)[:80]}")
        return connection
