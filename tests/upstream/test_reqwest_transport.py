"""What is pyreqwest's own in its transport: clients pinned per checked origin and address, pooled and retired,
only ever handed URLs of their origin, and answers read ahead only when they cannot be a stream. What every
transport owes the gateway is in test_transport_contract.py, run through this one too.

Network hygiene: every listener binds a 127.x loopback address and the guard's resolver is a stub that
answers 127.x only.
"""

from __future__ import annotations

import asyncio
import gzip

import pytest
from pyreqwest.http import Url

from sluicegate.errors import InvalidCustomHost
from sluicegate.settings import Settings
from sluicegate.upstream.guard import Guard, GuardPolicy
from sluicegate.upstream.pinned import ClientKey, ClientPool, Lease
from sluicegate.upstream.reqwest import READ_AHEAD_BYTES, ReqwestTransport, _Target, client_for, read_ahead
from tests.upstream.guard_stubs import FakeClock, StubResolver
from tests.upstream.raw import answering, raw_answer

LOOPBACK = Settings(host="127.0.0.1", upstream_connect_timeout_s=2, upstream_read_timeout_s=0.3)


def _guard(settings: Settings, table: dict[str, object] | None = None, clock: FakeClock | None = None) -> Guard:
    stub = StubResolver(table or {})
    return Guard(GuardPolicy.from_settings(settings), resolver=stub, clock=clock or FakeClock())


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


CHUNKED = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
           b"b\r\n{\"ok\":true}\r\n0\r\n\r\n")
FRAMINGS = {"content-length": raw_answer(b'{"ok":true}'), "chunked": CHUNKED}
CHAT = ("POST", "/v1/chat/completions", b'{"model":"m","messages":[]}')  # read ahead: cannot be a stream
OTHER = ("POST", "/v1/x", b"{}")  # read one byte ahead: could be a stream


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
