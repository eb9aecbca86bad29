"""The pyreqwest transport speaks the gateway's terms, puts on the wire what the aiohttp transport does, and
connects only to addresses the guard checked. Raw servers on loopback, in-process.

Network hygiene: every listener binds a 127.x loopback address and the guard's resolver is a stub that
answers 127.x only; the client's own resolver is never used (that is what the pinning tests prove, with a
name whose system answer differs from the stub's).
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import zlib
from collections.abc import AsyncIterator

import pytest
from pyreqwest.http import Url

from sluicegate.errors import InvalidCustomHost
from sluicegate.settings import Settings
from sluicegate.upstream.client import create_session
from sluicegate.upstream.guard import Guard, GuardPolicy
from sluicegate.upstream.pinned import ClientKey, ClientPool, Lease
from sluicegate.upstream.reqwest import READ_AHEAD_BYTES, ReqwestTransport, _Target, client_for, read_ahead
from sluicegate.upstream.transport import (
    AiohttpTransport,
    BodyBroken,
    BodyTooLarge,
    Transport,
    TransportError,
    TransportTimeout,
)
from tests.upstream.guard_stubs import FakeClock, StubResolver
from tests.upstream.raw import HEADER_CASES, KeepAlive, answering, compressed, header, raw_answer

LOOPBACK = Settings(host="127.0.0.1", upstream_connect_timeout_s=2, upstream_read_timeout_s=0.3)
NOT_TRUSTED = Settings(host="0.0.0.0", upstream_connect_timeout_s=2, upstream_read_timeout_s=0.3)


def _guard(settings: Settings, table: dict[str, object] | None = None, clock: FakeClock | None = None) -> Guard:
    stub = StubResolver(table or {})
    return Guard(GuardPolicy.from_settings(settings), resolver=stub, clock=clock or FakeClock())


@pytest.fixture
async def transport() -> AsyncIterator[ReqwestTransport]:
    sent = ReqwestTransport(LOOPBACK, _guard(LOOPBACK))
    yield sent
    await sent.close()


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
    async def stalls(head, reader, writer):
        writer.write(raw_answer(b"x", length=10))
        await writer.drain()
        await asyncio.sleep(2)

    upstream = await upstreams(stalls)
    response = await transport.send("GET", upstream.url(), {}, None)
    assert await response.read_chunk() == b"x"
    with pytest.raises(TransportTimeout) as info:
        await response.read_chunk()
    assert (info.value.source, info.value.seconds) == ("read", 0.3)


async def test_a_full_listen_queue_is_the_connect_timeout(upstreams):
    settings = Settings(host="127.0.0.1", upstream_connect_timeout_s=0.3, upstream_read_timeout_s=5)
    sent = ReqwestTransport(settings, _guard(settings))
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


async def test_an_answer_within_the_limit_is_read_whole(upstreams, transport):
    upstream = await upstreams(answering(raw_answer(b'{"ok":true}', extra=b"x-a: 1\r\nx-a: 2\r\n")))
    response = await transport.send("GET", upstream.url(), {}, None)
    assert (response.status, response.content_type) == (200, "application/json")
    assert [value for name, value in response.headers if name == "x-a"] == ["1", "2"]
    assert await response.read(100) == b'{"ok":true}'


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/x", b"{}"),
    # On a path whose answers stream only when asked, a body that asks is not read ahead (either spelling).
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


@pytest.mark.parametrize("case", list(HEADER_CASES))
async def test_the_wire_carries_what_the_aiohttp_transport_sends(upstreams, case):
    method, headers, body = HEADER_CASES[case]
    upstream = await upstreams(answering(raw_answer(b"{}")))
    seen = []
    for transport in _both(LOOPBACK):
        try:
            response = await transport.send(method, upstream.url("localhost", "/v1/x?q=1"), headers, body)
            await response.read(100)
        finally:
            await transport.close()
        request_line, *lines = upstream.heads[-1].rstrip(b"\r\n").split(b"\r\n")
        seen.append((request_line, sorted(line.lower() for line in lines)))
    assert seen[0] == seen[1]


def _both(settings: Settings, table: dict[str, object] | None = None) -> list[Transport]:
    table = table or {"localhost": ["127.0.0.1"]}
    aio_guard = _guard(settings, table)
    session = create_session(settings, aio_guard.resolver(), (aio_guard.client_middleware(),))
    return [ReqwestTransport(settings, _guard(settings, table)), AiohttpTransport(session)]


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw deflate", "br", "GZIP", "identity", "zstd"])
async def test_an_encoded_answer_reads_as_with_aiohttp(upstreams, encoding):
    plain = b'{"choices":[{"text":"' + b"ha" * 5000 + b'"}]}'
    body = compressed(encoding.lower(), plain)
    header = b"deflate" if encoding == "raw deflate" else encoding.encode()
    upstream = await upstreams(answering(raw_answer(body, extra=b"content-encoding: " + header + b"\r\n")))
    results: list[bytes | type[Exception]] = []
    for transport in _both(LOOPBACK):
        try:
            response = await transport.send("GET", upstream.url(), {}, None)
            results.append(await response.read(1 << 20))
        except TransportError as exc:
            results.append(type(exc))
        finally:
            await transport.close()
    assert results[0] == results[1]
    if encoding == "zstd":  # aiohttp lacks the codec and fails the answer; so does the default transport
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


async def test_a_name_connects_to_the_checked_address_not_the_systems(upstreams):
    # "localhost" is 127.0.0.1 to the system; the guard's resolver says 127.0.0.2, where the upstream is.
    upstream = await upstreams(answering(raw_answer(b"{}")), address="127.0.0.2")
    sent = ReqwestTransport(LOOPBACK, _guard(LOOPBACK, {"localhost": ["127.0.0.2"]}))
    try:
        response = await sent.send("GET", upstream.url("localhost"), {}, None)
        assert await response.read(100) == b"{}"
    finally:
        await sent.close()
    assert header(upstream.heads[0], b"host") == b"localhost:%d" % upstream.port  # the name, not the address


async def test_a_rebinding_answer_waits_for_the_verdicts_ttl(upstreams):
    first = await upstreams(answering(raw_answer(b'"first"')), address="127.0.0.2")
    second = await upstreams(answering(raw_answer(b'"second"')), address="127.0.0.3", port=first.port)
    clock = FakeClock()
    guard = _guard(LOOPBACK, {"localhost": [["127.0.0.2"], ["127.0.0.3"]]}, clock)
    sent = ReqwestTransport(LOOPBACK, guard)
    try:
        bodies = []
        for advance in (0, 5, 60):  # the verdict lives 30 s
            clock.advance(advance)
            response = await sent.send("GET", first.url("localhost"), {}, None)
            bodies.append(await response.read(100))
        assert bodies == [b'"first"', b'"first"', b'"second"']
    finally:
        await sent.close()
    assert (len(first.heads), len(second.heads)) == (2, 1)


async def test_a_refused_name_opens_no_connection(upstreams):
    upstream = await upstreams(answering(raw_answer(b"{}")))
    sent = ReqwestTransport(NOT_TRUSTED, _guard(NOT_TRUSTED, {"sneaky.example.com": ["127.0.0.1"]}))
    try:
        with pytest.raises(InvalidCustomHost, match="resolves to 127.0.0.1"):
            await sent.send("GET", upstream.url("sneaky.example.com"), {}, None)
        with pytest.raises(InvalidCustomHost, match="127.0.0.1 is a loopback address"):
            await sent.send("GET", upstream.url(), {}, None)  # an IP literal nobody checked before
    finally:
        await sent.close()
    assert upstream.heads == []


async def test_the_next_checked_address_is_tried_when_connecting_fails(upstreams):
    upstream = await upstreams(answering(raw_answer(b"{}")), address="127.0.0.3")
    sent = ReqwestTransport(LOOPBACK, _guard(LOOPBACK, {"localhost": ["127.0.0.2", "127.0.0.3"]}))
    try:
        response = await sent.send("GET", upstream.url("localhost"), {}, None)  # nothing on 127.0.0.2
        assert await response.read(100) == b"{}"
    finally:
        await sent.close()


async def test_an_allow_list_change_retires_the_pinned_clients(upstreams):
    upstream = await upstreams(answering(raw_answer(b"{}")))
    guard = _guard(LOOPBACK)
    sent = ReqwestTransport(LOOPBACK, guard)
    try:
        for _ in range(2):
            await (await sent.send("GET", upstream.url(), {}, None)).read(100)
        assert len(sent._clients) == 1
        guard.set_extra_allows(["10.0.0.9"])
        assert len(sent._clients) == 1  # retired when next used
        await (await sent.send("GET", upstream.url(), {}, None)).read(100)
        assert len(sent._clients) == 1
    finally:
        await sent.close()


class _FakeClient:
    def __init__(self, key: ClientKey) -> None:
        self.key, self.closed = key, False

    async def close(self) -> None:
        self.closed = True


async def test_the_pool_closes_a_client_only_after_its_requests():
    generation = [0]
    built: list[_FakeClient] = []

    def build(key: ClientKey) -> _FakeClient:
        built.append(_FakeClient(key))
        return built[-1]

    pool = ClientPool(build, lambda: generation[0], size=2)
    keys = [ClientKey("http", f"h{i}", 80, "203.0.113.1") for i in range(3)]
    held = pool.acquire(keys[0])
    pool.release(pool.acquire(keys[1]))
    pool.release(pool.acquire(keys[2]))  # evicts keys[0], which is still held
    await asyncio.sleep(0)
    assert [client.closed for client in built] == [False, False, False]
    assert pool.in_use == 1  # the evicted client's request still holds its connection
    pool.release(held)
    assert pool.in_use == 0
    await asyncio.sleep(0)
    assert [client.closed for client in built] == [True, False, False]
    generation[0] += 1
    pool.release(pool.acquire(keys[1]))  # a new allow-list: every older client goes
    await asyncio.sleep(0)
    assert [client.closed for client in built] == [True, True, True, False]
    await pool.close()
    assert all(client.closed for client in built)


async def test_a_cancelled_read_lets_go_of_its_client(upstreams, transport):
    async def stalls(head, reader, writer):
        writer.write(raw_answer(b"x", length=10))
        await writer.drain()
        await asyncio.sleep(2)

    upstream = await upstreams(stalls)
    response = await transport.send("GET", upstream.url(), {}, None)
    reading = asyncio.ensure_future(response.read(100))
    await asyncio.sleep(0.05)
    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading
    assert [lease.holders for lease in transport._clients._leases.values()] == [0]


CHUNKED = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
           b"b\r\n{\"ok\":true}\r\n0\r\n\r\n")
FRAMINGS = {"content-length": raw_answer(b'{"ok":true}'), "chunked": CHUNKED}
CHAT = ("POST", "/v1/chat/completions", b'{"model":"m","messages":[]}')  # read ahead: cannot be a stream
OTHER = ("POST", "/v1/x", b"{}")  # read one byte ahead: could be a stream


@pytest.mark.parametrize("framing", list(FRAMINGS))
@pytest.mark.parametrize("request_", [CHAT, OTHER], ids=["read-ahead", "one-byte"])
async def test_a_complete_body_leaves_its_connection_to_the_next_request(framing, request_, transport):
    method, path, body = request_
    async with KeepAlive(FRAMINGS[framing]) as upstream:
        for _ in range(20):
            response = await transport.send(method, upstream.url(path), {}, body)
            assert await response.read(100) == b'{"ok":true}'
        for _ in range(20):
            response = await transport.send(method, upstream.url(path), {}, body)
            assert [await response.read_chunk(), await response.read_chunk()] == [b'{"ok":true}', b""]
        assert transport.connections_in_use() == 0
        assert upstream.connections <= 2  # pooled (one, unless a request overtook a connection's return)


@pytest.mark.parametrize(("method", "path", "body", "ahead"), [
    ("POST", "/v1/chat/completions", b'{"model":"m","messages":[]}', READ_AHEAD_BYTES),
    ("POST", "/v1/messages", b'{"model":"m"}', READ_AHEAD_BYTES),
    ("POST", "/v1/embeddings?x=1", b'{"input":"a"}', READ_AHEAD_BYTES),
    ("POST", "/v1/chat/completions", b'{"model":"m","stream":true}', 1),
    ("POST", "/v1/chat/completions", b'{"model":"m","stream": false}', 1),  # asks about streams: not judged
    ("POST", "/v1/chat/completions", b'{"model":"m","\\u0073tream":true}', 1),
    ("POST", "/v1/chat/completions", None, 1),
    ("POST", "/v1/chat/completions", gzip.compress(b'{"model":"m","stream":true}', mtime=0), 1),  # cannot tell
    ("POST", "/v1/chat/completions", b' {"model":"m"}', 1),
    ("POST", "/api/chat", b'{"model":"m"}', 1),  # Ollama's own API streams unless told not to
    ("POST", "/v1beta/models/m:streamGenerateContent", b"{}", 1),
    ("GET", "/v1/models", None, 1),
])
def test_only_an_answer_that_cannot_be_a_stream_is_read_ahead(method, path, body, ahead):
    assert read_ahead(_Target(Url(f"http://127.0.0.1:9{path}")), body) == ahead


def test_a_client_is_only_ever_handed_urls_of_its_own_origin():
    lease = Lease(ClientKey("http", "api.test", 80, "127.0.0.1"), client := object())
    assert client_for(lease, Url("http://api.test/v1/x")) is client
    for other in ("https://api.test/v1/x",  # a plain-http client checks no certificate: never an https URL
                  "https://api.test:80/v1/x", "http://api.test:8080/v1/x", "http://other.test/v1/x"):
        with pytest.raises(InvalidCustomHost):
            client_for(lease, Url(other))
