"""What is the HTTP/1.1 transport's own (upstream/h1.py): it frames and parses answers itself, refuses heads
that would break, parses URLs, keeps connections alive only when it may and bounds them. What every transport
owes the gateway (timeouts, limits, streams, the wire, pinning) is in test_transport_contract.py, run through
this one too. Raw servers on loopback, in-process.

Network hygiene: every listener binds a 127.x loopback address and the guard's resolver is a stub that
answers 127.x only (the conftest's tripwire fails any other connect or lookup).
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator

import pytest

from sluicegate.errors import InvalidCustomHost
from sluicegate.settings import Settings
from sluicegate.upstream.decoding import SLICE
from sluicegate.upstream.guard import Guard, GuardPolicy
from sluicegate.upstream.h1 import HEAD_MAX_BYTES, HEAD_MAX_HEADERS, H1Transport, _Target
from sluicegate.upstream.transport import BodyBroken, TransportError, TransportTimeout
from tests.upstream.guard_stubs import FakeClock, StubResolver
from tests.upstream.raw import KeepAlive, answering, header, raw_answer, read_text

LOOPBACK = Settings(host="127.0.0.1", upstream_connect_timeout_s=2, upstream_read_timeout_s=0.3)
CHUNKED = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
           b"b\r\n{\"ok\":true}\r\n0\r\n\r\n")


def _guard(settings: Settings, table: dict[str, object] | None = None, clock: FakeClock | None = None) -> Guard:
    return Guard(GuardPolicy.from_settings(settings), resolver=StubResolver(table or {}), clock=clock or FakeClock())


@pytest.fixture
async def transport() -> AsyncIterator[H1Transport]:
    sent = H1Transport(LOOPBACK, _guard(LOOPBACK))
    yield sent
    await sent.close()


# --- failures in the transport's terms -----------------------------------------------------------------


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


async def test_informational_answers_are_skipped(upstreams, transport):
    upstream = await upstreams(answering(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n"
                                         + raw_answer(b'{"ok":true}')))
    response = await transport.send("POST", upstream.url(), {}, b"{}")
    assert response.status == 200
    assert all(name != "link" for name, _ in response.headers)
    assert await response.read(100) == b'{"ok":true}'


async def test_a_body_framed_by_the_connections_end_ends_there(upstreams, transport):
    upstream = await upstreams(answering(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end"))
    assert await read_text(transport, upstream.url()) == b"until the end"
    assert transport.connections_in_use() == 0


async def test_a_head_request_reads_no_body(upstreams, transport):
    upstream = await upstreams(answering(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n"))
    response = await transport.send("HEAD", upstream.url(), {}, None)
    assert (response.status, await response.read(10)) == (200, b"")


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


async def test_an_upstream_that_asks_to_close_is_not_reused(transport):
    async with KeepAlive(raw_answer(b"{}", extra=b"connection: close\r\n")) as upstream:
        for _ in range(3):
            assert await read_text(transport, upstream.url("/v1/x")) == b"{}"
        assert upstream.connections == 3


async def test_a_kept_connection_the_upstream_closed_is_replaced_once(upstreams, transport):
    # Answers one request per connection without saying so: the kept connection is closed under us.
    upstream = await upstreams(answering(raw_answer(b"{}")))
    for _ in range(5):
        assert await read_text(transport, upstream.url(), "POST", b"{}") == b"{}"
    assert len(upstream.heads) == 5


async def test_an_idle_connection_is_closed_after_its_time(transport):
    transport._pool._idle_s = 0.1
    async with KeepAlive(raw_answer(b"{}")) as upstream:
        assert await read_text(transport, upstream.url("/v1/x")) == b"{}"
        await asyncio.sleep(0.3)
        assert await read_text(transport, upstream.url("/v1/x")) == b"{}"
        assert upstream.connections == 2


async def test_the_pool_size_bounds_open_connections():
    settings = Settings(host="127.0.0.1", upstream_connect_timeout_s=2, upstream_read_timeout_s=2,
                        upstream_pool_size=2)
    sent = H1Transport(settings, _guard(settings))
    try:
        async with KeepAlive(raw_answer(b"{}")) as upstream:
            texts = await asyncio.gather(*[read_text(sent, upstream.url("/v1/x")) for _ in range(10)])
            assert texts == [b"{}"] * 10
            assert upstream.connections == 2
    finally:
        await sent.close()


# --- pinning -------------------------------------------------------------------------------------------


async def test_an_allow_list_change_closes_the_kept_connections():
    guard = _guard(LOOPBACK)
    sent = H1Transport(LOOPBACK, guard)
    try:
        async with KeepAlive(raw_answer(b"{}")) as upstream:
            for _ in range(2):
                assert await read_text(sent, upstream.url("/v1/x")) == b"{}"
            assert upstream.connections == 1
            guard.set_extra_allows(["10.0.0.9"])
            assert await read_text(sent, upstream.url("/v1/x")) == b"{}"
            assert upstream.connections == 2
    finally:
        await sent.close()


async def test_a_second_answer_to_one_request_is_ignored_and_its_connection_not_kept(transport):
    async with KeepAlive(raw_answer(b'"asked"') + raw_answer(b'"unasked"')) as upstream:
        for _ in range(2):
            assert await read_text(transport, upstream.url("/v1/x")) == b'"asked"'
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
    assert await read_text(transport, upstream.url()) == b'"asked"'
    await asyncio.sleep(0.3)
    assert transport.connections_idle() == 0
    assert await read_text(transport, upstream.url()) == b'"asked"'
    assert len(upstream.heads) == 2


# --- malformed answers: what llhttp lets through, refused here ---------------------------------------


@pytest.mark.parametrize("status", [b"000", b"099", b"600", b"999"])
async def test_a_status_outside_200_to_599_is_an_invalid_response(upstreams, transport, status):
    upstream = await upstreams(answering(raw_answer(b"{}").replace(b"200 OK", status + b" Odd")))
    with pytest.raises(TransportError) as info:
        await transport.send("GET", upstream.url(), {}, None)
    assert info.value.kind == "InvalidResponse" and not isinstance(info.value, BodyBroken)
    assert transport.connections_in_use() == 0


@pytest.mark.parametrize("head", [
    b"HTTP/1.1 200 OK\r\nx-long: " + b"v" * HEAD_MAX_BYTES,  # a line that does not end
    b"HTTP/1.1 200 OK\r\n" + b"x-filler: vvvvvvvvvvvvvvvvvvvv\r\n" * 3000,  # a head that does not end
    b"HTTP/1.1 100 Continue\r\n\r\n" * 3000,  # informational heads that do not end
    raw_answer(b"{}", extra=b"".join(b"x-h%d: v\r\n" % n for n in range(HEAD_MAX_HEADERS))),
])
async def test_a_head_beyond_its_limits_is_an_invalid_response(upstreams, transport, head):
    async def answer(request, reader, writer):
        writer.write(head)
        await writer.drain()
        await asyncio.sleep(2)  # no end: the limit, not the upstream, ends it

    upstream = await upstreams(answer)
    with pytest.raises(TransportError) as info:
        await transport.send("GET", upstream.url(), {}, None)
    assert info.value.kind == "InvalidResponse"
    assert transport.connections_in_use() == 0


async def test_trailers_that_do_not_end_break_the_body(upstreams, transport):
    async def answer(request, reader, writer):
        writer.write(CHUNKED.removesuffix(b"\r\n") + b"x-trailer: ")
        for _ in range(64):  # 4 MiB, in reads of their own
            await asyncio.sleep(0.01)
            writer.write(b"v" * 65536)
            await writer.drain()

    upstream = await upstreams(answer)
    response = await transport.send("GET", upstream.url(), {}, None)
    assert await response.read_chunk() == b'{"ok":true}'
    with pytest.raises(BodyBroken) as info:
        await response.read_chunk()
    assert info.value.kind == "InvalidResponse"


async def test_trailers_are_not_headers(upstreams, transport):
    upstream = await upstreams(answering(CHUNKED.removesuffix(b"\r\n") + b"x-trailer: t\r\n\r\n"))
    response = await transport.send("GET", upstream.url(), {}, None)
    assert await response.read(100) == b'{"ok":true}'
    assert "x-trailer" not in dict(response.headers)


async def test_a_decoded_answer_comes_a_slice_at_a_time_without_its_encoding(upstreams, transport):
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = compressor.compress(b"\0" * (8 * SLICE)) + compressor.flush()  # ~8 KiB in one read
    upstream = await upstreams(answering(raw_answer(zeros, extra=b"content-encoding: x-gzip\r\n")))
    response = await transport.send("GET", upstream.url(), {}, None)
    assert "content-encoding" not in dict(response.headers)
    pieces = []
    while piece := await response.read_chunk():
        pieces.append(len(piece))
    assert sum(pieces) == 8 * SLICE and max(pieces) <= SLICE


# --- the read bound: one timer per connection ----------------------------------------------------------
# The bound applies to each wait for bytes, not to the whole answer, and a connection's timer (armed for an
# earlier wait, or an earlier request on the same kept-alive connection) never cuts a later wait short.


async def test_bytes_that_keep_coming_within_the_bound_are_read_whatever_the_whole_takes(upstreams, transport):
    async def trickles(head, reader, writer):
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 8\r\n\r\n")
        for byte in b"12345678":  # 8 gaps of 0.1 s: 0.8 s in all against a 0.3 s bound
            await asyncio.sleep(0.1)
            writer.write(bytes([byte]))
            await writer.drain()

    upstream = await upstreams(trickles)
    response = await transport.send("GET", upstream.url(), {}, None)
    assert await response.read(100) == b"12345678"


async def test_a_kept_connections_next_wait_gets_the_whole_bound(transport):
    answered = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the first request: answered at once
        writer.write(raw_answer(b"{}"))
        await writer.drain()
        answered.set()
        await reader.readuntil(b"\r\n\r\n")  # the second: its head only after 0.25 s, within the bound
        await asyncio.sleep(0.25)
        writer.write(raw_answer(b'{"second":true}'))
        await writer.drain()
        await reader.read()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/x"
    try:
        first = await transport.send("GET", url, {}, None)
        assert await first.read(100) == b"{}"
        await answered.wait()
        await asyncio.sleep(0.2)  # the first wait's timer (0.3 s) would fire 0.1 s into the second wait
        second = await transport.send("GET", url, {}, None)
        assert await second.read(100) == b'{"second":true}'
    finally:
        server.close()


async def test_silence_after_bytes_times_out_one_bound_after_the_last_byte(upstreams, transport):
    async def stalls_after_a_while(head, reader, writer):
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 9\r\n\r\n")
        for byte in b"1234":
            await asyncio.sleep(0.1)
            writer.write(bytes([byte]))
            await writer.drain()
        await asyncio.sleep(1)

    upstream = await upstreams(stalls_after_a_while)
    response = await transport.send("GET", upstream.url(), {}, None)
    loop = asyncio.get_running_loop()
    received = b""
    with pytest.raises(TransportTimeout) as info:
        while True:
            chunk = await response.read_chunk()
            received += chunk
            last_byte_at = loop.time()
    silence = loop.time() - last_byte_at
    assert (received, info.value.source, info.value.seconds) == (b"1234", "read", 0.3)
    assert 0.25 <= silence < 0.6
