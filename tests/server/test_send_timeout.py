"""A client that stops reading its answer is abandoned after SLUICEGATE_SEND_TIMEOUT: its connection is aborted,
a stream's upstream connection closed, and the request logged as a client that left (499), on both edges.

Black box: a real gateway process, a raw upstream on 127.0.0.1 that pours SSE (or one large JSON answer), and
a raw client socket with a small receive buffer that never reads. Before the bound, such a client held the
gateway's connection and the upstream's for ever. Bounded: the upstream sends at most ``BUDGET`` bytes."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator

import orjson
import pytest

from tests.fakes.endless import EndlessUpstream
from tests.gateway import GatewayProcess
from tests.logapi import ADMIN_TOKEN, LogApi, new_trace

SEND_TIMEOUT = 1.0
WITHIN = 20.0  # generous: the bound is 1-2 s, the machine is a loaded 2-core one
BUDGET = 48 * 1024 * 1024
TCP_ESTABLISHED = 1

_EVENT = b"data: " + orjson.dumps({
    "id": "chatcmpl-endless", "object": "chat.completion.chunk", "created": 1, "model": "m",
    "choices": [{"index": 0, "delta": {"content": "x" * 400}, "finish_reason": None}],
}) + b"\n\n"
SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
SSE_BLOCK = _EVENT * (65536 // len(_EVENT))


@pytest.fixture(scope="module")
def gateway(tmp_path_factory) -> Iterator[GatewayProcess]:
    process = GatewayProcess(tmp_path_factory.mktemp("send-timeout"), env={
        "SLUICEGATE_SEND_TIMEOUT": str(SEND_TIMEOUT),
        "SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN,
        "SLUICEGATE_MAX_CONNECTIONS": "16",
    }).start()
    yield process
    process.stop()


def _request(upstream: EndlessUpstream, trace: str, *, stream: bool, chunked: bool) -> bytes:
    """A chat request: with a Content-Length the native edge serves it, with a chunked body aiohttp's server
    does (docs/transport.md, "The native edge")."""
    body = orjson.dumps({"model": "m", "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
    framing = ("transfer-encoding: chunked\r\n" if chunked else f"content-length: {len(body)}\r\n")
    sent = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if chunked else body
    return (f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"x-portkey-provider: openai\r\nx-portkey-custom-host: {upstream.v1}\r\n"
            f"x-portkey-trace-id: {trace}\r\n{framing}\r\n").encode() + sent


def _stalled_client(gateway: GatewayProcess, request: bytes) -> socket.socket:
    """A client that sends ``request`` and never reads: its receive buffer is small, so the gateway's writes
    soon wait for it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", gateway.port))
    sock.sendall(request)
    return sock


def _tcp_state(sock: socket.socket) -> int:
    """The connection's TCP state as the kernel sees it (tcp_info's first byte), read without reading data."""
    return struct.unpack("B", sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)[:1])[0]


def _until(check, limit: float) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


@pytest.mark.parametrize("edge", ["native", "aiohttp"])
def test_a_stream_to_a_client_that_stops_reading_is_abandoned_and_its_upstream_closed(gateway, edge):
    upstream = EndlessUpstream(SSE_HEAD, block=SSE_BLOCK, budget=BUDGET).start()
    trace = new_trace()
    sock = _stalled_client(gateway, _request(upstream, trace, stream=True, chunked=edge == "aiohttp"))
    try:
        assert _until(lambda: upstream.sent > 0, 10), "the upstream was never asked"
        # The gateway gives up on the client: the upstream's connection is closed before its budget is spent.
        assert _until(lambda: upstream.dropped == 1, WITHIN), (
            f"the upstream connection stayed open ({upstream.sent} bytes sent)")
        assert upstream.sent < BUDGET
        # And the client's connection is gone, seen without reading a byte (reset, or closed by the gateway).
        assert _until(lambda: _tcp_state(sock) != TCP_ESTABLISHED, WITHIN), "the client connection is still open"
        record = LogApi(gateway.url).one(trace)
    finally:
        sock.close()
        upstream.stop()
    assert record["status"] == 499 and record["stream"] is True
    assert record["error"]["type"] == "client_closed_request"  # as a client that left mid-stream
    assert "SLUICEGATE_SEND_TIMEOUT" in record["error"]["message"]  # and why: it stopped reading


def _json_answer(size: int) -> tuple[bytes, bytes]:
    body = orjson.dumps({
        "id": "chatcmpl-large", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "y" * size}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    })
    return (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)), body


@pytest.mark.parametrize("edge", ["native", "aiohttp"])
def test_a_large_answer_to_a_client_that_does_not_read_it_is_abandoned(gateway, edge):
    head, body = _json_answer(12 * 1024 * 1024)  # beyond what the kernel's socket buffers take (4 MiB + 4 KiB)
    upstream = EndlessUpstream(head, block=body, budget=len(body)).start()
    trace = new_trace()
    sock = _stalled_client(gateway, _request(upstream, trace, stream=False, chunked=edge == "aiohttp"))
    try:
        record = LogApi(gateway.url).one(trace)  # the answer was whole when it went out: logged then
        assert _until(lambda: _tcp_state(sock) != TCP_ESTABLISHED, WITHIN), "the client connection is still open"
    finally:
        sock.close()
        upstream.stop()
    assert record["status"] == 200


def test_a_slow_client_that_keeps_reading_is_not_cut(gateway):
    """The bound is on progress, not speed: a client that takes a little in every period keeps its stream.
    (A guard on the bound itself: the gateway before it passes this too.)"""
    budget = 4 * 1024 * 1024
    upstream = EndlessUpstream(SSE_HEAD, block=SSE_BLOCK, budget=budget).start()
    trace = new_trace()
    sock = _stalled_client(gateway, _request(upstream, trace, stream=True, chunked=False))
    received = bytearray()
    try:
        slow_until = time.monotonic() + 4 * SEND_TIMEOUT
        while time.monotonic() < slow_until:  # 4 KiB every 0.25 s: far less than the stream offers
            received += sock.recv(4096)
            time.sleep(0.25)
        sock.settimeout(WITHIN)
        while not received.endswith(b"\r\n0\r\n\r\n"):
            chunk = sock.recv(1 << 20)
            assert chunk, "the gateway closed the stream"
            received += chunk
    finally:
        sock.close()
        upstream.stop()
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    assert upstream.sent >= budget and upstream.dropped == 0  # relayed to the upstream's end
