"""Raw HTTP/1.1 upstreams on loopback for the transport tests: each records the request heads it read, so a
test sees the exact wire a transport wrote."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import threading
import zlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import brotli

Answer = Callable[[bytes, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Upstream:
    """A raw HTTP/1.1 server on one loopback address; records each request head and whether the client
    closed the connection before the answer was complete."""

    def __init__(self, answer: Answer, address: str = "127.0.0.1", port: int = 0) -> None:
        self.answer, self.address, self.port = answer, address, port
        self.heads: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> Upstream:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                length = header(head, b"content-length")
                if length:
                    await reader.readexactly(int(length))
                await self.answer(head, reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(handle, self.address, self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def url(self, host: str | None = None, path: str = "/v1/x") -> str:
        return f"http://{host or self.address}:{self.port}{path}"

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()


@contextlib.contextmanager
def in_a_thread(answer: Answer) -> Iterator[Upstream]:
    """An ``Upstream`` on an event loop of its own thread, for a client that blocks (an SDK, a gateway process's
    test). At the end, answers still running (one holding its end back) are cancelled before the loop closes."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = Upstream(answer)
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    try:
        yield server
    finally:
        async def stop() -> None:
            await server.stop()
            running = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def header(head: bytes, name: bytes) -> bytes | None:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


def raw_answer(body: bytes, *, length: int | None = None, extra: bytes = b"") -> bytes:
    size = len(body) if length is None else length
    return (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" + extra
            + b"content-length: %d\r\n\r\n" % size + body)


def answering(data: bytes) -> Answer:
    async def answer(head, reader, writer):
        writer.write(data)
        await writer.drain()

    return answer


class KeepAlive:
    """A raw HTTP/1.1 server that answers every request on a connection with ``answer`` and counts the
    connections it accepted: a client that drops connections instead of pooling them opens more."""

    def __init__(self, answer: bytes) -> None:
        self.answer, self.connections = answer, 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> KeepAlive:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                for _ in range(1000):
                    head = await reader.readuntil(b"\r\n\r\n")
                    if length := header(head, b"content-length"):
                        await reader.readexactly(int(length))
                    writer.write(self.answer)
                    await writer.drain()
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    def url(self, path: str) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}{path}"


def compressed(encoding: str, data: bytes) -> bytes:
    if encoding == "gzip":
        return gzip.compress(data)
    if encoding == "deflate":
        return zlib.compress(data)
    if encoding == "raw deflate":
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        return compressor.compress(data) + compressor.flush()
    if encoding == "br":
        return brotli.compress(data)
    return data


HEADER_CASES = {
    "json post": ("POST", {"content-type": "application/json", "authorization": "Bearer sk-x"}, b"{}"),
    "get": ("GET", {}, None),
    "untyped body": ("POST", {}, b"xx"),
    "own agent and accept": ("GET", {"User-Agent": "mine", "Accept": "text/plain"}, None),
    "post without body": ("POST", {}, None),
    "delete": ("DELETE", {"x-api-key": "k"}, None),
}


async def read_text(transport: Any, url: str, method: str = "GET", body: bytes | None = None) -> bytes:
    """A whole answer's body through ``transport`` (any of the gateway's), read within 1 MiB."""
    return await (await transport.send(method, url, {}, body)).read(1 << 20)
