"""The native edge's protocol (server/native.py), in process: which requests it serves itself, and how it hands
a connection to aiohttp's protocol with every byte it has not served, in order.

The route and the middleware are stand-ins here; the whole gateway runs through the native edge in every
black-box suite (a chat request without ``stream`` is served by it)."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiohttp import web
from multidict import CIMultiDict

from sluicegate.server.connections import ConnectionGuard, ConnectionLimits
from sluicegate.server.native import BODY_MAX, HEAD_MAX, NativeServer
from sluicegate.write_batch import WriteBatch
from tests.fakes.client_socket import ClientTransport

CHAT = "/v1/chat/completions"


class AiohttpStandIn(asyncio.Protocol):
    """Records what aiohttp's protocol would be given after a hand-over."""

    def __init__(self) -> None:
        self.transport: asyncio.BaseTransport | None = None
        self.received = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received += data


def _post(path: str = CHAT, body: bytes = b'{"model":"m","messages":[]}', *, extra: bytes = b"",
          version: bytes = b"HTTP/1.1") -> bytes:
    return (b"POST %s %s\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s"
            % (path.encode(), version, len(body), extra, body))


class Served:
    def __init__(self, *, delay: float = 0.0) -> None:
        self.requests: list[tuple[str, bytes]] = []
        self.delay = delay

    async def route(self, request) -> web.Response:  # type: ignore[no-untyped-def]
        body = request.content.read_nowait()
        self.requests.append((request.path, body))
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.Response(status=200, body=orjson.dumps({"n": len(self.requests)}),
                            headers={"content-type": "application/json"})


async def _edge(request, handler):  # type: ignore[no-untyped-def]
    return await handler(request)


def _connection(route, *, idle_timeout_s: float = 60.0, body_timeout_s: float = 60.0):  # type: ignore[no-untyped-def]
    """A native connection on a fake transport, serving ``route`` (a Served, or a handler) at CHAT."""
    handler = route.route if isinstance(route, Served) else route
    writes = WriteBatch()
    server = NativeServer(web.Application(), _edge, {CHAT: handler}, ConnectionGuard(ConnectionLimits(), writes),
                          idle_timeout_s=idle_timeout_s, body_timeout_s=body_timeout_s, writes=writes)
    aiohttp_side: list[AiohttpStandIn] = []

    def aiohttp_protocol() -> AiohttpStandIn:
        aiohttp_side.append(AiohttpStandIn())
        return aiohttp_side[-1]

    connection = server.protocols(aiohttp_protocol)()
    transport = ClientTransport()
    connection.connection_made(transport)
    return server, connection, transport, aiohttp_side


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def _answers(written: bytes) -> list[tuple[int, bytes]]:
    answers, rest = [], bytes(written)
    while rest:
        head, _, rest = rest.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.startswith(b"Content-Length")))
        answers.append((int(head.split(b" ")[1]), rest[:length]))
        rest = rest[length:]
    return answers


async def test_a_plain_chat_request_is_answered_on_the_connection_itself():
    served = Served()
    _, connection, transport, aiohttp_side = _connection(served)

    connection.data_received(_post())
    await _settle()

    assert served.requests == [(CHAT, b'{"model":"m","messages":[]}')]
    assert _answers(transport.written) == [(200, b'{"n":1}')]
    head = bytes(transport.written).split(b"\r\n\r\n")[0].lower()
    assert b"\r\ndate: " in head and b"\r\nserver: " in head and b"connection: close" not in head
    assert not aiohttp_side and not transport.closed


async def test_answers_ready_in_one_loop_turn_go_out_together_at_its_end():
    events: list[str] = []

    class Logged(ClientTransport):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

        def write(self, data) -> None:  # type: ignore[no-untyped-def]
            events.append(f"wrote {self.name}")
            super().write(data)

    async def route(request) -> web.Response:  # type: ignore[no-untyped-def]
        events.append(f"answered {request.content.read_nowait().decode()}")
        return web.Response(status=200, body=b"{}", headers={"content-type": "application/json"})

    server, first, _, _ = _connection(route)
    second = server.protocols(AiohttpStandIn)()
    transports = {"a": Logged("a"), "b": Logged("b")}
    first.connection_made(transports["a"])
    second.connection_made(transports["b"])

    first.data_received(_post(body=b"a"))
    second.data_received(_post(body=b"b"))
    await _settle()

    # One wake-up of the client's side for both: each answer waited for the other's handler.
    assert events == ["answered a", "answered b", "wrote a", "wrote b"]
    assert [_answers(transports[name].written) for name in "ab"] == [[(200, b"{}")], [(200, b"{}")]]


async def test_a_connection_closed_right_after_its_answer_was_batched_still_sends_it():
    loop = asyncio.get_running_loop()
    closer: list = []

    async def route(request) -> web.Response:  # type: ignore[no-untyped-def]
        # Queued before the answer is batched (and so before its flush): shutdown closing idle connections.
        loop.call_soon(closer[0].close_if_idle)
        return web.Response(status=200, body=b'{"ok":1}', headers={"content-type": "application/json"})

    _, connection, transport, _ = _connection(route)
    closer.append(connection)

    connection.data_received(_post())
    await _settle()

    assert transport.closed
    assert _answers(transport.written) == [(200, b'{"ok":1}')]


async def test_pipelined_requests_are_answered_in_order_and_the_first_other_one_goes_to_aiohttp_with_its_bytes():
    served = Served(delay=0.01)
    _, connection, transport, aiohttp_side = _connection(served)
    other = b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    after = _post(body=b'{"n":3}')

    connection.data_received(_post(body=b'{"n":1}') + _post(body=b'{"n":2}') + other[:10])
    connection.data_received(other[10:] + after)
    await asyncio.sleep(0.1)

    assert [body for _, body in served.requests] == [b'{"n":1}', b'{"n":2}']
    assert _answers(transport.written) == [(200, b'{"n":1}'), (200, b'{"n":2}')]
    assert len(aiohttp_side) == 1 and aiohttp_side[0].transport is transport
    assert bytes(aiohttp_side[0].received) == other + after  # byte for byte, the native request after it too
    connection.data_received(b"more")
    assert bytes(aiohttp_side[0].received).endswith(b"more")  # the connection is aiohttp's from now on


@pytest.mark.parametrize(("case", "request_bytes"), [
    ("another path", _post("/v1/messages")),
    ("a query", _post(CHAT + "?x=1")),
    ("absolute form", _post("http://127.0.0.1" + CHAT)),
    ("HTTP/1.0", _post(version=b"HTTP/1.0")),
    ("GET", b"GET /v1/chat/completions HTTP/1.1\r\nHost: h\r\n\r\n"),
    ("chunked body", b"POST /v1/chat/completions HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"2\r\n{}\r\n0\r\n\r\n"),
    ("expect", _post(extra=b"Expect: 100-continue\r\n")),
    ("compressed body", _post(extra=b"Content-Encoding: gzip\r\n")),
    ("upgrade", _post(extra=b"Upgrade: websocket\r\nConnection: upgrade\r\n")),
    ("two lengths", _post(extra=b"Content-Length: 27\r\n")),
    ("no length", b"POST /v1/chat/completions HTTP/1.1\r\nHost: h\r\n\r\n"),
    ("a signed length", _post().replace(b"Content-Length: 27", b"Content-Length: +27")),
    ("a length in other digits", _post().replace(b"Content-Length: 27", b"Content-Length: \xb2")),
    ("a bare line feed", _post().replace(b"Host: 127.0.0.1\r\n", b"Host: 127.0.0.1\n")),
    ("a malformed header", _post(extra=b"Bad Header: x\r\n")),
    ("a malformed request line", b"GARBAGE\r\n"),
    ("too many headers", _post(extra=b"".join(b"X-%d: 1\r\n" % n for n in range(128)))),
    ("a head over the limit", _post(extra=b"X-Pad: " + b"a" * HEAD_MAX + b"\r\n")),
    ("a body over the limit", _post().replace(b"Content-Length: 27", b"Content-Length: %d" % (BODY_MAX + 1))),
])
async def test_anything_but_the_common_case_is_aiohttps_with_every_byte(case, request_bytes):
    served = Served()
    _, connection, transport, aiohttp_side = _connection(served)

    connection.data_received(request_bytes)
    await _settle()

    assert not served.requests and not transport.written
    assert len(aiohttp_side) == 1, case
    assert bytes(aiohttp_side[0].received) == request_bytes


async def test_a_request_arriving_in_pieces_is_served_once_whole():
    served = Served()
    _, connection, transport, aiohttp_side = _connection(served)
    whole = _post()

    for index in range(len(whole)):
        connection.data_received(whole[index:index + 1])
        await asyncio.sleep(0)

    await _settle()
    assert served.requests == [(CHAT, b'{"model":"m","messages":[]}')] and not aiohttp_side


async def test_connection_close_is_honoured_and_said():
    served = Served()
    _, connection, transport, _ = _connection(served)

    connection.data_received(_post(extra=b"Connection: close\r\n"))
    await _settle()

    assert b"\r\nConnection: close\r\n" in transport.written
    assert transport.closed


async def test_a_client_that_leaves_cancels_its_request():
    served = Served(delay=10)
    _, connection, transport, _ = _connection(served)
    connection.data_received(_post())
    await _settle()
    task = connection._task
    assert task is not None

    connection.connection_lost(None)
    await asyncio.sleep(0)

    assert task.cancelled() or task.done()
    assert not transport.written


async def test_reading_pauses_while_a_request_runs_and_much_more_waits_behind_it():
    served = Served(delay=0.05)
    _, connection, transport, _ = _connection(served)
    connection.data_received(_post())
    await _settle()

    big = _post(body=b"x" * BODY_MAX)
    connection.data_received(big + big)
    assert not transport.reading
    await asyncio.sleep(0.2)
    assert transport.reading


async def test_an_idle_connection_is_closed_after_the_idle_bound():
    served = Served()
    _, connection, transport, _ = _connection(served, idle_timeout_s=0.05)
    connection.data_received(_post())
    await _settle()
    assert not transport.closed

    await asyncio.sleep(0.15)

    assert transport.closed


async def test_draining_closes_idle_connections_and_waits_for_running_requests():
    served = Served(delay=0.05)
    server, busy, busy_transport, _ = _connection(served)
    idle = server.protocols(AiohttpStandIn)()
    idle_transport = ClientTransport()
    idle.connection_made(idle_transport)
    busy.data_received(_post())
    await _settle()

    await asyncio.wait_for(server.drained(), 1)

    assert idle_transport.closed
    assert _answers(busy_transport.written) == [(200, b'{"n":1}')]
    assert busy_transport.closed  # answered, then closed: no further request is taken


async def test_a_body_on_its_way_counts_as_a_running_request_until_it_is_whole():
    served = Served()
    server, connection, transport, aiohttp_side = _connection(served)
    whole = _post()
    head_end = whole.index(b"\r\n\r\n") + 4

    connection.data_received(whole[:head_end + 3])
    await _settle()
    assert server.running == 1 and not served.requests  # the body has its own bound, as on aiohttp's path
    connection.data_received(whole[head_end + 3:])
    await _settle()

    assert served.requests == [(CHAT, b'{"model":"m","messages":[]}')] and not aiohttp_side
    assert server.running == 0


async def test_a_body_that_does_not_come_in_time_is_answered_by_the_route_then_the_connection_closes():
    seen = []

    async def route(request):  # type: ignore[no-untyped-def]
        seen.append(request.content.is_eof())
        try:
            await request.read()
        except TimeoutError:
            return web.Response(status=408, body=b"late", headers={"content-type": "text/plain"})
        return web.Response(status=200)

    _, connection, transport, _ = _connection(route, body_timeout_s=0.05)
    whole = _post()

    connection.data_received(whole[:-5])
    await asyncio.sleep(0.15)

    assert seen == [False]
    assert _answers(transport.written) == [(408, b"late")]
    assert b"\r\nConnection: close\r\n" in transport.written and transport.closed


async def test_a_client_that_does_not_read_its_answers_gets_no_further_one_until_it_does():
    served = Served()
    _, connection, transport, _ = _connection(served)
    connection.pause_writing()  # the transport's buffer is full

    connection.data_received(_post(body=b'{"n":1}') + _post(body=b'{"n":2}'))
    await _settle()
    assert not served.requests

    connection.resume_writing()
    await _settle()
    assert _answers(transport.written) == [(200, b'{"n":1}'), (200, b'{"n":2}')]


async def test_header_values_reach_the_route_decoded_as_aiohttp_decodes_them():
    seen = []

    async def route(request):  # type: ignore[no-untyped-def]
        seen.append(request.headers["x-portkey-metadata"])
        return web.Response(status=200)

    _, connection, _, _ = _connection(route)

    connection.data_received(_post(extra='X-Portkey-Metadata: {"team": "équipe"}\r\n'.encode() + b"X-Raw: \xff\r\n"))
    await _settle()

    assert seen == ['{"team": "équipe"}']


async def test_answer_headers_are_written_as_aiohttps_writer_writes_them():
    async def route(request):  # type: ignore[no-untyped-def]
        trace = request.headers["x-portkey-trace-id"]  # 0xFF came in: a lone surrogate here
        return web.Response(status=200, body=b"{}", headers={"content-type": "application/json",
                                                             "x-portkey-trace-id": trace})

    async def injected(request):  # type: ignore[no-untyped-def]
        return web.Response(status=200, body=b"{}", headers={"x-evil": "a\x01b"})

    for handler, expected in ((route, b"\r\nx-portkey-trace-id: poison--trace\r\n"), (injected, b"500")):
        _, connection, transport, _ = _connection(handler)

        connection.data_received(_post(extra=b"X-Portkey-Trace-Id: poison-\xff-trace\r\n"))
        await _settle()

        assert expected in bytes(transport.written)


@pytest.mark.parametrize(("value", "written"), [
    ("plain", b"x-a: plain\r\n"),
    ("a\ttab", b"x-a: a\ttab\r\n"),  # a tab is allowed in a value
    ("caf\u00e9 \u00a0nbsp", "x-a: caf\u00e9 \u00a0nbsp\r\n".encode()),  # not printable to Python, allowed in HTTP
    ("a\r\nx-injected: 1", None),  # a line end of the value's own: refused, never a second header
    ("a\nb", None),
    ("a\rb", None),
    ("nul\x00", None),
    ("del\x7f", None),
    ("vt\x0bff\x0c", None),  # every control character but the tab, not only the line ends
    ("us\x1f", None),
    ("caf\u00e9\x01", None),  # in a head that is not ASCII as well
])
async def test_an_answers_header_with_a_control_character_is_refused_and_any_other_written(value, written):
    async def route(request):  # type: ignore[no-untyped-def]
        response = web.Response(status=200, body=b"{}", headers={"content-type": "application/json"})
        response.headers["x-a"] = value  # set after construction: aiohttp's constructor checks nothing here
        return response

    _, connection, transport, _ = _connection(route)
    connection.data_received(_post())
    await _settle()

    answer = bytes(transport.written)
    if written is None:
        assert answer.startswith(b"HTTP/1.1 500 ") and b"x-injected" not in answer and b"x-a" not in answer
    else:
        assert answer.startswith(b"HTTP/1.1 200 ") and written in answer


async def test_an_answer_without_content_has_no_length_and_no_body():
    async def route(request):  # type: ignore[no-untyped-def]
        return web.Response(status=204)

    _, connection, transport, _ = _connection(route)

    connection.data_received(_post())
    await _settle()

    head, _, body = bytes(transport.written).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 204 No Content\r\n") and b"content-length" not in head.lower()
    assert body == b""


@pytest.mark.parametrize("value", [b"close", b"Close", b"keep-alive, close"])
async def test_a_connection_header_naming_close_ends_the_connection_as_llhttp_reads_it(value):
    served = Served()
    _, connection, transport, _ = _connection(served)

    connection.data_received(_post(extra=b"Connection: " + value + b"\r\n"))
    await _settle()

    assert b"\r\nConnection: close\r\n" in transport.written and transport.closed


async def test_a_drain_waits_for_a_body_on_its_way_and_its_answer():
    served = Served()
    server, connection, transport, aiohttp_side = _connection(served)
    whole = _post()
    connection.data_received(whole[:-4])
    await _settle()

    draining = asyncio.ensure_future(server.drained())
    await _settle()
    assert not draining.done()
    connection.data_received(whole[-4:])
    await asyncio.wait_for(draining, 1)

    assert _answers(transport.written) == [(200, b'{"n":1}')] and not aiohttp_side
    assert transport.closed  # answered, then closed


async def test_the_drain_bound_cancels_a_body_on_its_way_and_closes_its_connection():
    served = Served()
    server, connection, transport, _ = _connection(served)
    connection.data_received(_post()[:-4])
    await _settle()
    waiting = connection._task
    assert waiting is not None

    waiting.cancel()  # what connections.py's cancel_requests does at the drain bound
    await _settle()

    assert transport.closed and not served.requests and server.running == 0


@pytest.mark.parametrize("value", [None, "application/json; charset=utf-8", "TEXT/Plain", "nonsense", ""])
async def test_the_content_type_reads_as_on_aiohttps_request(value):
    from aiohttp.test_utils import make_mocked_request

    seen = []

    async def route(request):  # type: ignore[no-untyped-def]
        seen.append(request.content_type)
        return web.Response(status=200)

    _, connection, _, _ = _connection(route)
    given = b"" if value is None else b"Content-Type: " + value.encode() + b"\r\n"
    connection.data_received(_post().replace(b"Content-Type: application/json\r\n", given))
    await _settle()

    headers = {} if value is None else {"Content-Type": value}
    assert seen == [make_mocked_request("POST", CHAT, headers=headers).content_type]


_SDK_HEAD = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:8787\r\nAccept-Encoding: gzip, deflate\r\n"
             b"Connection: keep-alive\r\nAccept: application/json\r\nContent-Type: application/json\r\n"
             b"User-Agent: OpenAI/Python 1.82.0\r\nX-Stainless-Lang: python\r\nAuthorization: Bearer sk-0123456789\r\n"
             b"X-Portkey-Provider: openai\r\nContent-Length: 2\r\n")


@pytest.mark.parametrize("extra", [
    b"",
    b"X-A: trailing  \r\n",
    b"X-A:\t tabs \t\r\n",
    b"X-A:\r\n",
    b"X-A: caf\xc3\xa9\r\n",
    b"X-A: raw \xff byte\r\n",
    b"X-A: one\r\nx-a: two\r\n",
    b"Host: again\r\n",
    b"Content-Type: text/plain\r\n",
    b"User-Agent: another\r\n",
    b"Sec-WebSocket-Key1: x\r\n",
    b"X-A: nul\x00\r\n",
    b"X-A: del\x7f\r\n",
    b"X-A : space before the colon\r\n",
    b"".join(b"X-%d: v\r\n" % n for n in range(120)),
])
async def test_a_head_the_native_edge_takes_reads_as_aiohttps_parser_reads_it(extra):
    """Whatever the native edge accepts, aiohttp's own parser accepts too, with the same header text; all
    else is handed over (and then aiohttp's parser decides)."""
    from unittest import mock

    from aiohttp.http_parser import HttpRequestParser

    head = _SDK_HEAD + extra + b"\r\n"
    _, connection, _, _ = _connection(Served())
    native = connection._native_head(head)
    parser = HttpRequestParser(mock.Mock(), asyncio.get_running_loop(), 2**16, max_line_size=8190,
                               max_field_size=8190)
    try:
        messages, _, _ = parser.feed_data(head + b"{}")
    except Exception:
        assert native is None  # aiohttp refuses it: so must the native edge, by handing it over
        return
    if native is not None:
        assert list(native[1].items()) == list(messages[0][0].headers.items())
        assert native[3] is not messages[0][0].should_close


async def test_a_head_without_host_is_aiohttps_to_refuse():
    _, connection, _, _ = _connection(Served())

    assert connection._native_head(_SDK_HEAD.replace(b"Host: 127.0.0.1:8787\r\n", b"") + b"\r\n") is None
    assert connection._native_head(_SDK_HEAD + b"\r\n") is not None


# -- streams --------------------------------------------------------------------------------------------------

class Streamed:
    """A route relaying a stream the way server/streaming.py does, one event per write, each after ``gate``
    lets it go; ``fail_after``: raise once that many events are written (a bug after the head went out)."""

    def __init__(self, events: int = 3, *, fail_after: int | None = None) -> None:
        self.events, self.fail_after = events, fail_after
        self.gate: asyncio.Queue[None] = asyncio.Queue()
        self.written = 0
        self.failure: BaseException | None = None

    async def route(self, request) -> web.StreamResponse:  # type: ignore[no-untyped-def]
        response = request.stream_response(200, CIMultiDict({"x-portkey-provider": "openai"}))
        response.content_type = "text/event-stream"
        await response.prepare(request)
        try:
            for n in range(self.events):
                await self.gate.get()
                if self.fail_after is not None and n == self.fail_after:
                    raise RuntimeError("a bug mid-stream")
                await response.write(b"data: %d\n\n" % n)
                self.written += 1
        except BaseException as exc:
            self.failure = exc
            raise
        await response.write_eof()
        return response

    def release(self, count: int = 1) -> None:
        for _ in range(count):
            self.gate.put_nowait(None)


def _chunks(written: bytes) -> tuple[bytes, list[bytes], bytes]:
    """(the head, each chunk's bytes, what follows the last chunk) of one chunked answer."""
    head, _, rest = bytes(written).partition(b"\r\n\r\n")
    chunks = []
    while True:
        size, _, rest = rest.partition(b"\r\n")
        length = int(size, 16)
        if not length:
            assert rest.startswith(b"\r\n")
            return head, chunks, rest[2:]
        chunks.append(rest[:length])
        assert rest[length:length + 2] == b"\r\n"
        rest = rest[length + 2:]


async def test_a_stream_is_relayed_chunk_by_chunk_on_the_connection_and_the_next_request_follows():
    streamed = Streamed()
    _, connection, transport, aiohttp_side = _connection(streamed.route)

    connection.data_received(_post(body=b'{"model":"m","stream":true,"messages":[]}') + _post())
    await _settle()
    assert transport.written == b""  # the head waits for the first chunk, and goes out with it
    streamed.release()
    await _settle()
    head, chunks, rest = _chunks(bytes(transport.written) + b"0\r\n\r\n")
    assert chunks == [b"data: 0\n\n"] and not rest
    streamed.release(2)
    await _settle()
    streamed.release(3)  # the pipelined request is streamed too
    await _settle()

    head, chunks, rest = _chunks(transport.written)
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK"
    assert lines[1:3] == [b"x-portkey-provider: openai", b"Content-Type: text/event-stream"]
    assert lines[3] == b"Transfer-Encoding: chunked" and lines[4].startswith(b"Date: ")
    assert lines[5].startswith(b"Server: ") and len(lines) == 6
    assert chunks == [b"data: 0\n\n", b"data: 1\n\n", b"data: 2\n\n"]
    assert _chunks(rest)[1] == chunks  # the next request, answered after it on the same connection
    assert not aiohttp_side and not transport.closed


async def test_a_streams_last_event_and_the_end_of_its_chunks_go_out_in_one_write():
    async def route(request) -> web.StreamResponse:  # type: ignore[no-untyped-def]
        response = request.stream_response(200, CIMultiDict())
        await response.prepare(request)
        await response.write(b"data: 0\n\n")
        await response.write_eof(b"data: [DONE]\n\n")  # as the relay ends a clean stream
        await response.write_eof()  # once is enough
        return response

    _, connection, transport, _ = _connection(route)
    connection.data_received(_post(body=b'{"stream":true}'))
    await _settle()
    assert len(transport.sends) == 2  # the head with the first chunk, then the last with the end
    assert transport.sends[1] == b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n"
    assert _chunks(transport.written)[1:] == ([b"data: 0\n\n", b"data: [DONE]\n\n"], b"")
    assert not transport.closed


async def test_a_stream_waits_while_the_client_does_not_read():
    streamed = Streamed()
    _, connection, transport, _ = _connection(streamed.route)
    connection.data_received(_post(body=b'{"stream":true}'))
    await _settle()

    connection.pause_writing()  # the transport's buffer is full
    streamed.release(3)
    await _settle()
    assert streamed.written == 0 and transport.written == b""  # the first write waits

    connection.resume_writing()
    await _settle()
    assert streamed.written == 3
    assert _chunks(transport.written)[1] == [b"data: 0\n\n", b"data: 1\n\n", b"data: 2\n\n"]


async def test_a_client_leaving_mid_stream_cancels_the_relay_and_writes_nothing_more():
    streamed = Streamed()
    _, connection, transport, _ = _connection(streamed.route)
    connection.data_received(_post(body=b'{"stream":true}'))
    await _settle()
    streamed.release()
    await _settle()
    connection.pause_writing()
    streamed.release()
    await _settle()
    sent = bytes(transport.written)

    transport.closed = True
    connection.connection_lost(ConnectionResetError())
    await _settle()

    assert isinstance(streamed.failure, asyncio.CancelledError)
    assert transport.written == sent and streamed.written == 1


async def test_a_request_is_in_the_foreground_from_its_start_to_its_answers_first_byte():
    # The request log's drain waits for none to be (foreground.py): a buffered answer counts until it is
    # ready, a stream until its first chunk goes out, not while the rest of it is relayed.
    served = Served(delay=0.05)
    server, connection, transport, _ = _connection(served)
    connection.data_received(_post())
    await _settle()
    assert server.foreground.count == 1 and transport.written == b""
    await asyncio.sleep(0.1)
    assert _answers(transport.written) == [(200, b'{"n":1}')] and server.foreground.count == 0

    streamed = Streamed()
    server, connection, transport, _ = _connection(streamed.route)
    connection.data_received(_post(body=b'{"stream":true}'))
    await _settle()
    assert server.foreground.count == 1  # its upstream has sent nothing yet
    streamed.release()
    await _settle()
    assert streamed.written == 1 and server.foreground.count == 0
    streamed.release(2)
    await _settle()
    assert server.foreground.count == 0


async def test_a_request_that_ends_without_a_first_byte_leaves_the_foreground():
    streamed = Streamed()
    server, connection, transport, _ = _connection(streamed.route)
    connection.data_received(_post(body=b'{"stream":true}'))
    await _settle()
    assert server.foreground.count == 1
    transport.closed = True
    connection.connection_lost(ConnectionResetError())  # the client left before the first chunk
    await _settle()
    assert isinstance(streamed.failure, asyncio.CancelledError) and server.foreground.count == 0

    streamed = Streamed(fail_after=0)
    server, connection, transport, _ = _connection(streamed.route)
    connection.data_received(_post(body=b'{"stream":true}'))
    streamed.release()
    await _settle()
    assert _answers(transport.written)[0][0] == 500 and server.foreground.count == 0  # a failure before it


async def test_a_failure_after_the_head_closes_the_connection_instead_of_a_second_answer():
    streamed = Streamed(fail_after=1)

    async def edge(request, handler):  # type: ignore[no-untyped-def]
        try:
            return await handler(request)
        except RuntimeError:  # as edge_middleware: the error's answer, which cannot follow a started stream
            return web.Response(status=500, body=b"{}")

    server, connection, transport, _ = _connection(streamed.route)
    server.edge = edge
    connection.data_received(_post(body=b'{"stream":true}') + _post())
    streamed.release(2)
    await _settle()

    assert transport.closed
    assert bytes(transport.written).count(b"HTTP/1.1") == 1 and b"data: 0" in transport.written
    assert b"500" not in bytes(transport.written).split(b"\r\n")[0]


async def test_a_failure_before_a_streams_first_chunk_is_answered_as_any_other():
    streamed = Streamed(fail_after=0)

    async def edge(request, handler):  # type: ignore[no-untyped-def]
        try:
            return await handler(request)
        except RuntimeError:
            return web.Response(status=502, body=b'{"error":"upstream"}', headers={"content-type": "application/json"})

    server, connection, transport, _ = _connection(streamed.route)
    server.edge = edge
    connection.data_received(_post(body=b'{"stream":true}'))
    streamed.release()
    await _settle()

    assert _answers(transport.written) == [(502, b'{"error":"upstream"}')]  # nothing of the stream's head
    assert not transport.closed


async def test_the_native_edge_serves_every_unified_endpoint_with_the_routers_own_handler():
    from aiohttp.test_utils import make_mocked_request

    from sluicegate.server.routes import add_routes

    app = web.Application()
    native = add_routes(app)

    assert set(native) == {"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/messages",
                           "/v1/messages/count_tokens"}
    for path, handler in native.items():
        match = await app.router.resolve(make_mocked_request("POST", path, app=app))
        assert match.handler is handler, path
