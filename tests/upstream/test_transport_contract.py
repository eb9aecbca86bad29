"""What every upstream transport owes the gateway, run through each of them: the default client on the event
loop (``h1``) and pyreqwest's. They speak the gateway's terms, put on the wire what aiohttp's client puts
there, read bodies within limits, hand streams over chunk by chunk, and connect only to addresses the guard
checked. Each transport's own behaviours are in test_h1_transport.py and test_reqwest_transport.py.

Network hygiene: every listener binds a 127.x loopback address and the guard's resolver is a stub that
answers 127.x only; a client's own resolver is never used (that is what the pinning tests prove, with a name
whose system answer differs from the stub's), and the conftest's tripwire fails any other connect or lookup.
"""

from __future__ import annotations

import asyncio
import socket
import zlib
from collections.abc import AsyncIterator

import pytest

from sluicegate.errors import InvalidCustomHost
from sluicegate.settings import Settings
from sluicegate.upstream.client import create_session
from sluicegate.upstream.guard import Guard, GuardPolicy
from sluicegate.upstream.h1 import H1Transport
from sluicegate.upstream.reqwest import ReqwestTransport
from sluicegate.upstream.transport import (
    AiohttpTransport,
    BodyBroken,
    BodyTooLarge,
    TransportError,
    TransportTimeout,
)
from tests.upstream.guard_stubs import FakeClock, StubResolver
from tests.upstream.raw import HEADER_CASES, KeepAlive, answering, compressed, header, raw_answer, read_text

LOOPBACK = Settings(host="127.0.0.1", upstream_connect_timeout_s=2, upstream_read_timeout_s=0.3)
NOT_TRUSTED = Settings(host="0.0.0.0", upstream_connect_timeout_s=2, upstream_read_timeout_s=0.3)
KINDS = [H1Transport, ReqwestTransport]
Kind = type[H1Transport] | type[ReqwestTransport]


def _guard(settings: Settings, table: dict[str, object] | None = None, clock: FakeClock | None = None) -> Guard:
    return Guard(GuardPolicy.from_settings(settings), resolver=StubResolver(table or {}), clock=clock or FakeClock())


@pytest.fixture(params=KINDS, ids=["h1", "reqwest"])
def kind(request) -> Kind:
    return request.param


@pytest.fixture
async def transport(kind) -> AsyncIterator[H1Transport | ReqwestTransport]:
    sent = kind(LOOPBACK, _guard(LOOPBACK))
    yield sent
    await sent.close()


async def _stalls(head, reader, writer) -> None:
    """One byte of a ten-byte body, then silence."""
    writer.write(raw_answer(b"x", length=10))
    await writer.drain()
    await asyncio.sleep(2)


# --- failures in the transport's terms -----------------------------------------------------------------


async def test_a_refused_connection_names_its_reason(transport):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again at once: nothing listens there
    with pytest.raises(TransportError) as info:
        await transport.send("POST", f"http://127.0.0.1:{port}/v1/x", {}, b"{}")
    assert info.value.connect_reason == "Connection refused"


async def test_silence_before_the_head_is_the_read_timeout(upstreams, transport):
    async def silent(head, reader, writer):
        await asyncio.sleep(2)

    upstream = await upstreams(silent)
    with pytest.raises(TransportTimeout) as info:
        await transport.send("POST", upstream.url(), {}, b"{}")
    assert (info.value.source, info.value.seconds) == ("read", 0.3)


async def test_silence_in_the_body_is_the_read_timeout(upstreams, transport):
    upstream = await upstreams(_stalls)
    response = await transport.send("GET", upstream.url(), {}, None)
    assert await response.read_chunk() == b"x"
    with pytest.raises(TransportTimeout) as info:
        await response.read_chunk()
    assert (info.value.source, info.value.seconds) == ("read", 0.3)


async def test_a_full_listen_queue_is_the_connect_timeout(kind):
    settings = Settings(host="127.0.0.1", upstream_connect_timeout_s=0.3, upstream_read_timeout_s=5)
    sent = kind(settings, _guard(settings))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    try:
        for _ in range(16):  # never accepted: the queue fills and later SYNs go unanswered
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(listener.getsockname())
            fillers.append(filler)
        with pytest.raises(TransportTimeout) as info:
            await sent.send("GET", f"http://127.0.0.1:{listener.getsockname()[1]}/v1/x", {}, None)
        assert (info.value.source, info.value.seconds) == ("connect", 0.3)
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
        await sent.close()


async def test_a_body_beyond_the_limit_is_refused_and_a_truncated_one_is_broken(upstreams, transport):
    big = await upstreams(answering(raw_answer(b"x" * 1000)))
    announced = await upstreams(answering(raw_answer(b"x" * 10, length=10**9)))
    truncated = await upstreams(answering(raw_answer(b"x" * 10, length=100)))
    response = await transport.send("GET", big.url(), {}, None)
    with pytest.raises(BodyTooLarge):
        await response.read(100)
    response = await transport.send("GET", announced.url(), {}, None)
    with pytest.raises(BodyTooLarge):
        await response.read(100)
    response = await transport.send("GET", truncated.url(), {}, None)
    assert await response.read_chunk() == b"x" * 10
    with pytest.raises(BodyBroken):
        await response.read_chunk()
    assert transport.connections_in_use() == 0


async def test_a_cancelled_read_lets_go_of_its_connection(upstreams, transport):
    upstream = await upstreams(_stalls)
    response = await transport.send("GET", upstream.url(), {}, None)
    reading = asyncio.ensure_future(response.read(100))
    await asyncio.sleep(0.05)
    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading
    assert transport.connections_in_use() == 0


# --- answers -----------------------------------------------------------------------------------------


async def test_an_answer_within_the_limit_is_read_whole(upstreams, transport):
    upstream = await upstreams(answering(raw_answer(b'{"ok":true}', extra=b"X-A: 1\r\nx-a: 2\r\n")))
    response = await transport.send("GET", upstream.url(), {}, None)
    assert (response.status, response.content_type) == (200, "application/json")
    assert [value for name, value in response.headers if name == "x-a"] == ["1", "2"]  # names lower-cased
    assert await response.read(100) == b'{"ok":true}'


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/x", b"{}"),
    # On a path whose answers stream only when asked, a body that asks (either spelling) is a stream.
    ("/v1/chat/completions", b'{"model":"m","stream":true}'),
    ("/v1/chat/completions", b'{"model":"m","\\u0073tream":true}'),
])
async def test_a_stream_is_handed_over_chunk_by_chunk(upstreams, transport, path, body):
    second = asyncio.Event()

    async def sse(head, reader, writer):
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                     b"7\r\ndata: 1\r\n")
        await writer.drain()
        await asyncio.wait_for(second.wait(), 5)
        writer.write(b"7\r\ndata: 2\r\n0\r\n\r\n")
        await writer.drain()

    upstream = await upstreams(sse)
    response = await transport.send("POST", upstream.url(path=path), {"content-type": "application/json"}, body)
    assert response.content_type == "text/event-stream"
    assert await asyncio.wait_for(response.read_chunk(), 2) == b"data: 1"  # before the next one exists
    second.set()
    assert await asyncio.wait_for(response.read_chunk(), 2) == b"data: 2"
    assert await response.read_chunk() == b""


async def test_closing_a_stream_drops_the_upstream_connection(upstreams, transport):
    dropped = asyncio.Event()

    async def endless(head, reader, writer):
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        try:
            for _ in range(200):
                writer.write(b"7\r\ndata: x\r\n")
                await writer.drain()
                await asyncio.sleep(0.02)
        except ConnectionError:
            pass
        if writer.is_closing() or reader.at_eof() or await reader.read(1) == b"":
            dropped.set()

    upstream = await upstreams(endless)
    response = await transport.send("GET", upstream.url(), {}, None)
    assert await response.read_chunk()
    response.close()
    await asyncio.wait_for(dropped.wait(), 3)


CHUNKED = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
           b"b\r\n{\"ok\":true}\r\n0\r\n\r\n")
CHAT = ("/v1/chat/completions", b'{"model":"m","messages":[]}')  # pyreqwest reads it ahead: cannot be a stream
OTHER = ("/v1/x", b"{}")  # pyreqwest reads one byte ahead: could be a stream


@pytest.mark.parametrize("framing", [raw_answer(b'{"ok":true}'), CHUNKED], ids=["content-length", "chunked"])
@pytest.mark.parametrize("request_", [CHAT, OTHER], ids=["cannot-stream", "may-stream"])
async def test_a_complete_body_leaves_its_connection_to_the_next_request(framing, request_, transport):
    path, body = request_
    async with KeepAlive(framing) as upstream:
        for _ in range(20):
            response = await transport.send("POST", upstream.url(path), {}, body)
            assert await response.read(100) == b'{"ok":true}'
        for _ in range(20):
            response = await transport.send("POST", upstream.url(path), {}, body)
            assert [await response.read_chunk(), await response.read_chunk()] == [b'{"ok":true}', b""]
        assert transport.connections_in_use() == 0
        assert upstream.connections <= 2  # pooled (one, unless a request overtook a connection's return)


# --- what reaches the wire, and what comes back, against aiohttp's client -----------------------------------


def _with_aiohttp(kind: Kind, table: dict[str, object]) -> list:
    aio_guard = _guard(LOOPBACK, table)
    session = create_session(LOOPBACK, aio_guard.resolver(), (aio_guard.client_middleware(),))
    return [kind(LOOPBACK, _guard(LOOPBACK, table)), AiohttpTransport(session)]


@pytest.mark.parametrize("case", list(HEADER_CASES))
async def test_the_wire_carries_what_the_aiohttp_transport_sends(upstreams, kind, case):
    method, headers, body = HEADER_CASES[case]
    upstream = await upstreams(answering(raw_answer(b"{}")))
    seen = []
    for sent in _with_aiohttp(kind, {"localhost": ["127.0.0.1"]}):
        try:
            response = await sent.send(method, upstream.url("localhost", "/v1/x?q=1"), headers, body)
            await response.read(100)
        finally:
            await sent.close()
        request_line, *lines = upstream.heads[-1].rstrip(b"\r\n").split(b"\r\n")
        seen.append((request_line, sorted(line.lower() for line in lines)))
    assert seen[0] == seen[1]


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw deflate", "br", "GZIP", "identity", "zstd"])
async def test_an_encoded_answer_reads_as_with_aiohttp(upstreams, kind, encoding):
    plain = b'{"choices":[{"text":"' + b"ha" * 5000 + b'"}]}'
    body = compressed(encoding.lower(), plain)
    name = b"deflate" if encoding == "raw deflate" else encoding.encode()
    upstream = await upstreams(answering(raw_answer(body, extra=b"content-encoding: " + name + b"\r\n")))
    results: list[bytes | type[Exception]] = []
    for sent in _with_aiohttp(kind, {}):
        try:
            results.append(await read_text(sent, upstream.url()))
        except TransportError as exc:
            results.append(type(exc))
        finally:
            await sent.close()
    assert results[0] == results[1]
    if encoding == "zstd":  # aiohttp lacks the codec and fails the answer; so do the others
        assert results[0] is TransportError
        return
    assert results[0] == (plain if encoding.lower() in ("gzip", "deflate", "raw deflate", "br") else body)


async def test_a_gzip_bomb_stops_at_the_cap(upstreams, transport):
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = b"".join([compressor.compress(b"\0" * (1 << 20)) for _ in range(64)] + [compressor.flush()])
    upstream = await upstreams(answering(raw_answer(bomb, extra=b"content-encoding: gzip\r\n")))
    response = await transport.send("GET", upstream.url(), {}, None)
    with pytest.raises(BodyTooLarge):
        await response.read(1 << 20)


async def test_broken_gzip_is_a_broken_body(upstreams, transport):
    upstream = await upstreams(answering(raw_answer(b"not gzip at all", extra=b"content-encoding: gzip\r\n")))
    response = await transport.send("GET", upstream.url(), {}, None)
    with pytest.raises(BodyBroken):
        await response.read(1000)


# --- pinning -------------------------------------------------------------------------------------------


async def test_a_name_connects_to_the_checked_address_not_the_systems(upstreams, kind):
    # "localhost" is 127.0.0.1 to the system; the guard's resolver says 127.0.0.2, where the upstream is.
    upstream = await upstreams(answering(raw_answer(b"{}")), address="127.0.0.2")
    sent = kind(LOOPBACK, _guard(LOOPBACK, {"localhost": ["127.0.0.2"]}))
    try:
        assert await read_text(sent, upstream.url("localhost")) == b"{}"
    finally:
        await sent.close()
    assert header(upstream.heads[0], b"host") == b"localhost:%d" % upstream.port  # the name, not the address


async def test_a_rebinding_answer_waits_for_the_verdicts_ttl(upstreams, kind):
    first = await upstreams(answering(raw_answer(b'"first"')), address="127.0.0.2")
    second = await upstreams(answering(raw_answer(b'"second"')), address="127.0.0.3", port=first.port)
    clock = FakeClock()
    sent = kind(LOOPBACK, _guard(LOOPBACK, {"localhost": [["127.0.0.2"], ["127.0.0.3"]]}, clock))
    try:
        bodies = []
        for advance in (0, 5, 60):  # the verdict lives 30 s
            clock.advance(advance)
            bodies.append(await read_text(sent, first.url("localhost")))
        assert bodies == [b'"first"', b'"first"', b'"second"']
    finally:
        await sent.close()
    assert (len(first.heads), len(second.heads)) == (2, 1)


async def test_a_refused_name_opens_no_connection(upstreams, kind):
    upstream = await upstreams(answering(raw_answer(b"{}")))
    sent = kind(NOT_TRUSTED, _guard(NOT_TRUSTED, {"sneaky.example.com": ["127.0.0.1"]}))
    try:
        with pytest.raises(InvalidCustomHost, match="resolves to 127.0.0.1"):
            await sent.send("GET", upstream.url("sneaky.example.com"), {}, None)
        with pytest.raises(InvalidCustomHost, match="127.0.0.1 is a loopback address"):
            await sent.send("GET", upstream.url(), {}, None)  # an IP literal nobody checked before
    finally:
        await sent.close()
    assert upstream.heads == []


async def test_the_next_checked_address_is_tried_when_connecting_fails(upstreams, kind):
    upstream = await upstreams(answering(raw_answer(b"{}")), address="127.0.0.3")
    sent = kind(LOOPBACK, _guard(LOOPBACK, {"localhost": ["127.0.0.2", "127.0.0.3"]}))
    try:
        assert await read_text(sent, upstream.url("localhost")) == b"{}"  # nothing listens on 127.0.0.2
    finally:
        await sent.close()
