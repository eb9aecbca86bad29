"""When a transport (upstream/h1.py, and pyreqwest's in upstream/reqwest.py) sends a request again after a
kept-alive connection failed before its answer: a request that may not be repeated (POST, PATCH) only when the failure came at once, i.e.
the upstream closed an idle connection as we reused it; never once the upstream may have acted on it.

Raw servers on loopback, in-process; the guard's resolver is a stub (the conftest's tripwire fails any other
connect or lookup). No assertion depends on tight timing: a hold of 0.3 s against a window of milliseconds.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import pytest

from sluicegate.settings import Settings
from sluicegate.upstream.guard import Guard, GuardPolicy
from sluicegate.upstream.h1 import H1Transport
from sluicegate.upstream.reqwest import ReqwestTransport
from sluicegate.upstream.transport import TransportError
from tests.upstream.guard_stubs import FakeClock, StubResolver
from tests.upstream.raw import header, raw_answer, read_text

# A read bound well beyond the upstream's hold: the failure is the upstream's close, not a timeout.
SETTINGS = Settings(host="127.0.0.1", upstream_connect_timeout_s=2, upstream_read_timeout_s=3)
HOLD_S = 0.3  # how long the upstream holds a request it read before closing without an answer


@pytest.fixture(params=[H1Transport, ReqwestTransport], ids=["h1", "reqwest"])
async def transport(request) -> AsyncIterator[H1Transport | ReqwestTransport]:
    guard = Guard(GuardPolicy.from_settings(SETTINGS), resolver=StubResolver({}), clock=FakeClock())
    sent = request.param(SETTINGS, guard)
    yield sent
    await sent.close()


def idle(transport: H1Transport | ReqwestTransport) -> int | None:
    """The transport's idle connections, where it can tell (pyreqwest keeps its pool to itself)."""
    return transport.connections_idle() if isinstance(transport, H1Transport) else None


class Scripted:
    """A keep-alive upstream: the first request it reads is answered (and the connection kept); every later
    one is read whole, held ``HOLD_S``, and its connection closed without a byte of answer. Records each
    request it read as (connection number, request line)."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, bytes]] = []
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Scripted:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            number = self.connections
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    if length := header(head, b"content-length"):
                        await reader.readexactly(int(length))
                    self.seen.append((number, head.split(b"\r\n", 1)[0]))
                    if len(self.seen) == 1:
                        writer.write(raw_answer(b'{"first":true}'))
                        await writer.drain()
                        continue
                    await asyncio.sleep(HOLD_S)  # "prefill", then a crash: no answer
                    return
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1/chat/completions"


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_a_request_the_upstream_held_is_not_sent_again(transport, method):
    async with Scripted() as upstream:
        assert await read_text(transport, upstream.url(), "POST", b"{}") == b'{"first":true}'
        assert idle(transport) in (1, None)
        with pytest.raises(TransportError) as info:
            await transport.send(method, upstream.url(), {"content-type": "application/json"}, b'{"n":2}')
        assert info.value.kind == "ServerDisconnectedError"
        assert [line for _, line in upstream.seen[1:]] == [method.encode() + b" /v1/chat/completions HTTP/1.1"]
        assert upstream.connections == 1
        assert transport.connections_in_use() == 0


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_an_idempotent_request_the_upstream_held_is_sent_again(transport, method):
    async with Scripted() as upstream:
        assert await read_text(transport, upstream.url(), "POST", b"{}") == b'{"first":true}'
        with pytest.raises(TransportError) as info:
            await transport.send(method, upstream.url(), {}, None)
        assert info.value.kind == "ServerDisconnectedError"
        assert [number for number, _ in upstream.seen] == [1, 1, 2]  # again, once, on a new connection


async def test_a_post_with_an_idempotency_key_is_sent_again(transport):
    async with Scripted() as upstream:
        assert await read_text(transport, upstream.url(), "POST", b"{}") == b'{"first":true}'
        with pytest.raises(TransportError):
            await transport.send("POST", upstream.url(), {"Idempotency-Key": "k-1"}, b"{}")
        assert [number for number, _ in upstream.seen] == [1, 1, 2]


async def test_a_post_on_a_connection_the_upstream_closes_as_it_is_reused_goes_on_a_new_one(transport,
                                                                                             monkeypatch):
    # The keep-alive race: the upstream closes its idle connection right as the next request is written
    # (here: in the loop's next turn, with the request unread: the client sees a reset). On loopback that
    # comes within microseconds; the window is widened only so that a busy machine cannot make it flaky.
    monkeypatch.setattr(sys.modules[type(transport).__module__], "REPLAY_WINDOW_S", 0.1)
    close_now = asyncio.Event()
    seen: list[tuple[int, bytes]] = []
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        number = connections
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(int(header(head, b"content-length") or 0))
            seen.append((number, head.split(b"\r\n", 1)[0]))
            writer.write(raw_answer(b'{"n":%d}' % len(seen)))
            await writer.drain()
            if number == 1:
                await close_now.wait()  # idle until then, and closed with whatever came unread
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/chat/completions"
    try:
        assert await read_text(transport, url, "POST", b"{}") == b'{"n":1}'
        assert idle(transport) in (1, None)
        close_now.set()  # the upstream closes in the loop's next turn: after the request below is written
        assert await read_text(transport, url, "POST", b"{}") == b'{"n":2}'
        assert seen == [(1, b"POST /v1/chat/completions HTTP/1.1"), (2, b"POST /v1/chat/completions HTTP/1.1")]
    finally:
        server.close()

