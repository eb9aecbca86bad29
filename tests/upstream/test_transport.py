"""The aiohttp transport speaks the gateway's terms: each aiohttp failure becomes the transport's own
exception (what the exchange and the relay rely on). Raw servers on 127.0.0.1, in-process."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from sluicegate.upstream.transport import AiohttpTransport, BodyBroken, BodyTooLarge, TransportError, TransportTimeout

Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Answer], Awaitable[str]]]:
    servers: list[asyncio.Server] = []

    async def start(answer: Answer) -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            await answer(reader, writer)
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/x"

    yield start
    for server in servers:
        server.close()


@pytest.fixture
async def transport() -> AsyncIterator[AiohttpTransport]:
    timeout = aiohttp.ClientTimeout(sock_connect=2, sock_read=0.3)
    sent = AiohttpTransport(aiohttp.ClientSession(timeout=timeout))
    yield sent
    await sent.close()


def _response(body: bytes, length: int | None = None) -> bytes:
    size = len(body) if length is None else length
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % size + body


async def test_a_refused_connection_names_its_reason(transport):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again at once: nothing listens there
    with pytest.raises(TransportError) as info:
        await transport.send("POST", f"http://127.0.0.1:{port}/v1/x", {}, b"{}")
    assert info.value.kind == "ClientConnectorError"
    # The OS error's own words: asyncio's default loop and uvloop word a refusal differently.
    assert info.value.connect_reason in ("Connection refused", f"Connect call failed ('127.0.0.1', {port})")


async def test_silence_is_the_read_timeout(serve, transport):
    async def silent(reader, writer):
        await asyncio.sleep(2)

    with pytest.raises(TransportTimeout) as info:
        await transport.send("POST", await serve(silent), {}, b"{}")
    assert (info.value.source, info.value.seconds) == ("read", 0.3)


async def test_a_body_beyond_the_limit_is_refused_and_a_truncated_one_is_broken(serve, transport):
    async def big(reader, writer):
        writer.write(_response(b"x" * 1000))
        await writer.drain()

    async def truncated(reader, writer):
        writer.write(_response(b"x" * 10, length=100))
        await writer.drain()

    response = await transport.send("GET", await serve(big), {}, None)
    with pytest.raises(BodyTooLarge):
        await response.read(100)
    response = await transport.send("GET", await serve(truncated), {}, None)
    assert await response.read_chunk() == b"x" * 10
    with pytest.raises(BodyBroken):
        await response.read_chunk()


async def test_an_answer_within_the_limit_is_read_whole(serve, transport):
    async def small(reader, writer):
        writer.write(_response(b'{"ok":true}'))
        await writer.drain()

    response = await transport.send("GET", await serve(small), {}, None)
    assert (response.status, response.content_type) == (200, "application/json")
    assert await response.read(100) == b'{"ok":true}'
