"""The HTTP/1.1 transport on the event loop (upstream/h1.py) speaks the gateway's terms, puts on the wire what
the pyreqwest and aiohttp transports put there, keeps connections alive only when it may, and connects only
to addresses the guard checked. Raw servers on loopback, in-process.

Network hygiene: every listener binds a 127.x loopback address and the guard's resolver is a stub that
answers 127.x only (the conftest's tripwire fails any other connect or lookup).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from sluicegate.errors import InvalidCustomHost
from sluicegate.settings import Settings
from sluicegate.upstream.client import create_session
from sluicegate.upstream.guard import Guard, GuardPolicy
from sluicegate.upstream.h1 import H1Transport, _Target
from sluicegate.upstream.reqwest import ReqwestTransport
from sluicegate.upstream.transport import AiohttpTransport, BodyBroken, BodyTooLarge, TransportError, TransportTimeout
from tests.upstream.guard_stubs import FakeClock, StubResolver
from tests.upstream.raw import HEADER_CASES, KeepAlive, answering, compressed, header, raw_answer

LOOPBACK = Settings(host="127.0.0.1", upstream_connect_timeout_s=2, upstream_read_timeout_s=0.3)
NOT_TRUSTED = Settings(host="0.0.0.0", upstream_connect_timeout_s=2, upstream_read_timeout_s=0.3)
CHUNKED = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
           b"b\r\n{\"ok\":true}\r\n0\r\n\r\n")


def _guard(settings: Settings, table: dict[str, object] | None = None, clock: FakeClock | None = None) -> Guard:
    return Guard(GuardPolicy.from_settings(settings), resolver=StubResolver(table or {}), clock=clock or FakeClock())


@pytest.fixture
async def transport() -> AsyncIterator[H1Transport]:
    sent = H1Transport(LOOPBACK, _guard(LOOPBACK))
    yield sent
    await sent.close()


async def _text(sent: H1Transport, url: str, method: str = "GET", body: bytes | None = None) -> bytes:
    return await (await sent.send(method, url, {}, body)).read(1 << 20)


# --- failures in the transport's terms -----------------------------------------------------------------


async def test_a_refused_connection_names_its_reason(transport):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again at once: nothing listens there
    with pytest.raises(TransportError) as info:
        await transport.send("POST", f"http://127.0.0.1:{port}/v1/x", {}, b"{}")
    assert (info.value.kind, info.value.connect_reason) == ("ConnectError", "Connection refused")


async def test_silence_before_the_head_is_the_read_timeout(upstreams, transport):
    async def silent(head, reader, writer):
        await asyncio.sleep(2)

    upstream = await upstreams(silent)
    with pytest.raises(TransportTimeout) as info:
        await transport.send("POST", upstream.url(), {}, b"{}")
    assert (info.value.source, info.value.seconds) == ("read", 0.3)
    assert transport.connections_in_use() == 0


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


async def test_a_full_listen_queue_is_the_connect_timeout():
    settings = Settings(host="127.0.0.1", upstream_connect_timeout_s=0.3, upstream_read_timeout_s=5)
    sent = H1Transport(settings, _guard(settings))
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


@pytest.mark.parametrize(("answer", "error"), [
    (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}", TransportError),
    (b"NOT HTTP AT ALL\r\n\r\n", TransportError),
    (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n", BodyBroken),
])
async def test_an_answer_that_is_not_http_is_a_transport_error(upstreams, transport, answer, error):
    upstream = await upstreams(answering(answer))
    with pytest.raises(error) as info:
        response = await transport.send("GET", upstream.url(), {}, None)
        await response.read(100)
    assert info.value.kind == "InvalidResponse"
    assert transport.connections_in_use() == 0


async def test_an_upstream_that_closes_without_answering_is_a_disconnect(upstreams, transport):
    async def hangs_up(head, reader, writer):
        pass

    upstream = await upstreams(hangs_up)
    with pytest.raises(TransportError) as info:
        await transport.send("POST", upstream.url(), {}, b"{}")
    assert info.value.kind == "ServerDisconnectedError"


# --- answers -----------------------------------------------------------------------------------------


async def test_an_answer_within_the_limit_is_read_whole(upstreams, transport):
    upstream = await upstreams(answering(raw_answer(b'{"ok":true}', extra=b"X-A: 1\r\nx-a: 2\r\n")))
    response = await transport.send("GET", upstream.url(), {}, None)
    assert (response.status, response.content_type) == (200, "application/json")
    assert [value for name, value in response.headers if name == "x-a"] == ["1", "2"]  # names lower-cased
    assert await response.read(100) == b'{"ok":true}'


async def test_informational_answers_are_skipped(upstreams, transport):
    upstream = await upstreams(answering(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n"
                                         + raw_answer(b'{"ok":true}')))
    response = await transport.send("POST", upstream.url(), {}, b"{}")
    assert response.status == 200
    assert all(name != "link" for name, _ in response.headers)
    assert await response.read(100) == b'{"ok":true}'


async def test_a_body_framed_by_the_connections_end_ends_there(upstreams, transport):
    upstream = await upstreams(answering(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end"))
    assert await _text(transport, upstream.url()) == b"until the end"
    assert transport.connections_in_use() == 0


async def test_a_head_request_reads_no_body(upstreams, transport):
    upstream = await upstreams(answering(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n"))
    response = await transport.send("HEAD", upstream.url(), {}, None)
    assert (response.status, await response.read(10)) == (200, b"")


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/x", b"{}"),
    ("/v1/chat/completions", b'{"model":"m","stream":true}'),
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
    assert transport.connections_in_use() == 0


async def test_an_unread_answer_stops_the_upstream_from_sending(upstreams, transport):
    sent = [0]
    paused = asyncio.Event()

    async def flood(head, reader, writer):
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: %d\r\n\r\n"
                     % (64 << 20))
        block = b"x" * 65536
        try:
            for _ in range(1024):
                writer.write(block)
                try:
                    await asyncio.wait_for(writer.drain(), 0.5)
                except TimeoutError:
                    paused.set()  # the socket buffers are full: the client stopped reading
                    return
                sent[0] += len(block)
        except ConnectionError:
            pass

    upstream = await upstreams(flood)
    response = await transport.send("GET", upstream.url(), {}, None)
    await asyncio.wait_for(paused.wait(), 10)
    assert sent[0] < 16 << 20  # held back by buffers of a few MiB, not the 64 MiB announced
    assert len(await response.read_chunk()) > 0
    response.close()


async def test_a_cancelled_read_lets_go_of_its_connection(upstreams, transport):
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
    assert transport.connections_in_use() == 0


async def test_a_request_cancelled_before_its_head_closes_the_connection(upstreams, transport):
    closed = asyncio.Event()

    async def slow(head, reader, writer):
        if await reader.read(1) == b"":
            closed.set()

    upstream = await upstreams(slow)
    sending = asyncio.ensure_future(transport.send("POST", upstream.url(), {}, b"{}"))
    await asyncio.sleep(0.05)
    sending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sending
    await asyncio.wait_for(closed.wait(), 2)
    assert transport.connections_in_use() == 0


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw deflate", "br", "GZIP", "identity", "zstd"])
async def test_an_encoded_answer_reads_as_with_aiohttp(upstreams, encoding):
    plain = b'{"choices":[{"text":"' + b"ha" * 5000 + b'"}]}'
    body = compressed(encoding.lower(), plain)
    name = b"deflate" if encoding == "raw deflate" else encoding.encode()
    upstream = await upstreams(answering(raw_answer(body, extra=b"content-encoding: " + name + b"\r\n")))
    results: list[bytes | type[Exception]] = []
    for transport in _with_aiohttp(LOOPBACK, {}):
        try:
            results.append(await (await transport.send("GET", upstream.url(), {}, None)).read(1 << 20))
        except TransportError as exc:
            results.append(type(exc))
        finally:
            await transport.close()
    assert results[0] == results[1]


# --- the wire --------------------------------------------------------------------------------------------


def _with_aiohttp(settings: Settings, table: dict[str, object]) -> list:
    aio_guard = _guard(settings, table)
    session = create_session(settings, aio_guard.resolver(), (aio_guard.client_middleware(),))
    return [H1Transport(settings, _guard(settings, table)), AiohttpTransport(session)]


@pytest.mark.parametrize("case", list(HEADER_CASES))
async def test_the_wire_carries_what_the_other_transports_send(upstreams, case):
    method, headers, body = HEADER_CASES[case]
    upstream = await upstreams(answering(raw_answer(b"{}")))
    table: dict[str, object] = {"localhost": ["127.0.0.1"]}
    seen = []
    for transport in [*_with_aiohttp(LOOPBACK, table), ReqwestTransport(LOOPBACK, _guard(LOOPBACK, table))]:
        try:
            response = await transport.send(method, upstream.url("localhost", "/v1/x?q=1"), headers, body)
            await response.read(100)
        finally:
            await transport.close()
        request_line, *lines = upstream.heads[-1].rstrip(b"\r\n").split(b"\r\n")
        seen.append((request_line, sorted(line.lower() for line in lines)))
    assert seen[0] == seen[1] == seen[2]


async def test_framing_headers_are_the_transports_own(upstreams, transport):
    upstream = await upstreams(answering(raw_answer(b"{}")))
    given = {"Host": "elsewhere.test", "Content-Length": "999", "Transfer-Encoding": "chunked",
             "Connection": "close", "x-kept": "yes"}
    await (await transport.send("POST", upstream.url(), given, b"{}")).read(10)
    head = upstream.heads[-1]
    assert header(head, b"host") == b"127.0.0.1:%d" % upstream.port
    assert header(head, b"content-length") == b"2"
    assert header(head, b"transfer-encoding") is None and header(head, b"connection") is None
    assert header(head, b"x-kept") == b"yes"


@pytest.mark.parametrize("headers", [
    {"x-a": "one\r\nx-injected: two"},
    {"x-a": "nul\x00"},
    {"x-a\r\nx-injected": "two"},
    {"bad name": "v"},
    {"": "v"},
])
async def test_a_header_that_would_break_the_head_is_refused_before_sending(upstreams, transport, headers):
    upstream = await upstreams(answering(raw_answer(b"{}")))
    with pytest.raises(TransportError):
        await transport.send("GET", upstream.url(), headers, None)
    assert upstream.heads == []


@pytest.mark.parametrize(("url", "origin", "authority", "target"), [
    ("http://127.0.0.1:8000/v1/chat/completions", "http://127.0.0.1:8000", "127.0.0.1:8000", "/v1/chat/completions"),
    ("http://API.Example.test/v1?x=1&y=%2F#frag", "http://api.example.test:80", "api.example.test", "/v1?x=1&y=%2F"),
    ("https://example.test", "https://example.test:443", "example.test", "/"),
    ("https://example.test:443/v1", "https://example.test:443", "example.test", "/v1"),
    ("http://[::1]:9000/v1", "http://[::1]:9000", "[::1]:9000", "/v1"),
    ("http://bücher.test/v1", "http://xn--bcher-kva.test:80", "xn--bcher-kva.test", "/v1"),
    ("http://h.test/a b/ü\"<>", "http://h.test:80", "h.test", "/a%20b/%C3%BC%22%3C%3E"),
    ("http://user:pw@h.test/v1", "http://h.test:80", "h.test", "/v1"),  # user-info is never sent
])
def test_a_url_becomes_an_origin_a_host_header_and_a_request_target(url, origin, authority, target):
    parsed = _Target(url)
    assert (parsed.origin, parsed.authority, parsed.target) == (origin, authority, target)


@pytest.mark.parametrize("url", ["ftp://h.test/x", "http:///x", "http://h.test:99999/x", "http://h.test:x/",
                                 "/relative", "http://[::1/x"])
def test_a_url_that_cannot_be_sent_is_refused(url):
    with pytest.raises(InvalidCustomHost):
        _Target(url)


# --- connections -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("framing", [raw_answer(b'{"ok":true}'), CHUNKED], ids=["content-length", "chunked"])
async def test_a_complete_body_leaves_its_connection_to_the_next_request(framing, transport):
    async with KeepAlive(framing) as upstream:
        for _ in range(20):
            assert await _text(transport, upstream.url("/v1/chat/completions"), "POST", b"{}") == b'{"ok":true}'
        for _ in range(20):
            response = await transport.send("POST", upstream.url("/v1/x"), {}, b"{}")
            assert [await response.read_chunk(), await response.read_chunk()] == [b'{"ok":true}', b""]
        assert transport.connections_in_use() == 0
        assert upstream.connections == 1


async def test_an_upstream_that_asks_to_close_is_not_reused(transport):
    async with KeepAlive(raw_answer(b"{}", extra=b"connection: close\r\n")) as upstream:
        for _ in range(3):
            assert await _text(transport, upstream.url("/v1/x")) == b"{}"
        assert upstream.connections == 3


async def test_a_kept_connection_the_upstream_closed_is_replaced_once(upstreams, transport):
    # Answers one request per connection without saying so: the kept connection is closed under us.
    upstream = await upstreams(answering(raw_answer(b"{}")))
    for _ in range(5):
        assert await _text(transport, upstream.url(), "POST", b"{}") == b"{}"
    assert len(upstream.heads) == 5


async def test_an_idle_connection_is_closed_after_its_time(transport):
    transport._pool._idle_s = 0.1
    async with KeepAlive(raw_answer(b"{}")) as upstream:
        assert await _text(transport, upstream.url("/v1/x")) == b"{}"
        await asyncio.sleep(0.3)
        assert await _text(transport, upstream.url("/v1/x")) == b"{}"
        assert upstream.connections == 2


async def test_the_pool_size_bounds_open_connections():
    settings = Settings(host="127.0.0.1", upstream_connect_timeout_s=2, upstream_read_timeout_s=2,
                        upstream_pool_size=2)
    sent = H1Transport(settings, _guard(settings))
    try:
        async with KeepAlive(raw_answer(b"{}")) as upstream:
            texts = await asyncio.gather(*[_text(sent, upstream.url("/v1/x")) for _ in range(10)])
            assert texts == [b"{}"] * 10
            assert upstream.connections == 2
    finally:
        await sent.close()


# --- pinning -------------------------------------------------------------------------------------------


async def test_a_name_connects_to_the_checked_address_not_the_systems(upstreams):
    # "localhost" is 127.0.0.1 to the system; the guard's resolver says 127.0.0.2, where the upstream is.
    upstream = await upstreams(answering(raw_answer(b"{}")), address="127.0.0.2")
    sent = H1Transport(LOOPBACK, _guard(LOOPBACK, {"localhost": ["127.0.0.2"]}))
    try:
        assert await _text(sent, upstream.url("localhost")) == b"{}"
    finally:
        await sent.close()
    assert header(upstream.heads[0], b"host") == b"localhost:%d" % upstream.port  # the name, not the address


async def test_a_rebinding_answer_waits_for_the_verdicts_ttl(upstreams):
    first = await upstreams(answering(raw_answer(b'"first"')), address="127.0.0.2")
    second = await upstreams(answering(raw_answer(b'"second"')), address="127.0.0.3", port=first.port)
    clock = FakeClock()
    sent = H1Transport(LOOPBACK, _guard(LOOPBACK, {"localhost": [["127.0.0.2"], ["127.0.0.3"]]}, clock))
    try:
        bodies = []
        for advance in (0, 5, 60):  # the verdict lives 30 s
            clock.advance(advance)
            bodies.append(await _text(sent, first.url("localhost")))
        assert bodies == [b'"first"', b'"first"', b'"second"']
    finally:
        await sent.close()
    assert (len(first.heads), len(second.heads)) == (2, 1)


async def test_a_refused_name_opens_no_connection(upstreams, tripwire):
    upstream = await upstreams(answering(raw_answer(b"{}")))
    sent = H1Transport(NOT_TRUSTED, _guard(NOT_TRUSTED, {"sneaky.example.com": ["127.0.0.1"]}))
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
    sent = H1Transport(LOOPBACK, _guard(LOOPBACK, {"localhost": ["127.0.0.2", "127.0.0.3"]}))
    try:
        assert await _text(sent, upstream.url("localhost")) == b"{}"  # nothing listens on 127.0.0.2
    finally:
        await sent.close()


async def test_an_allow_list_change_closes_the_kept_connections():
    guard = _guard(LOOPBACK)
    sent = H1Transport(LOOPBACK, guard)
    try:
        async with KeepAlive(raw_answer(b"{}")) as upstream:
            for _ in range(2):
                assert await _text(sent, upstream.url("/v1/x")) == b"{}"
            assert upstream.connections == 1
            guard.set_extra_allows(["10.0.0.9"])
            assert await _text(sent, upstream.url("/v1/x")) == b"{}"
            assert upstream.connections == 2
    finally:
        await sent.close()


async def test_a_second_answer_to_one_request_is_ignored_and_its_connection_not_kept(transport):
    async with KeepAlive(raw_answer(b'"asked"') + raw_answer(b'"unasked"')) as upstream:
        for _ in range(2):
            assert await _text(transport, upstream.url("/v1/x")) == b'"asked"'
        assert upstream.connections == 2


async def test_bytes_on_an_idle_connection_retire_it(upstreams, transport):
    async def then_unasked(head, reader, writer):
        writer.write(raw_answer(b'"asked"'))
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.write(raw_answer(b'"unasked"'))
        await writer.drain()
        await asyncio.sleep(1)

    upstream = await upstreams(then_unasked)
    assert await _text(transport, upstream.url()) == b'"asked"'
    await asyncio.sleep(0.3)
    assert transport.connections_idle() == 0
    assert await _text(transport, upstream.url()) == b'"asked"'
    assert len(upstream.heads) == 2
