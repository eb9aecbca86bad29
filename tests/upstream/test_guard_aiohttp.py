"""The guard inside a real aiohttp ClientSession: how a block surfaces, and that nothing connects.

Network hygiene: the stub resolver only ever answers 127.x loopback addresses, the policies here do
NOT trust loopback (the gateway "listens" on 0.0.0.0), and a local listener counts what arrives. The
autouse tripwire (conftest.py) would fail any lookup or connect that left loopback anyway.
"""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest

from sluicegate.errors import InvalidCustomHost
from sluicegate.settings import Settings
from sluicegate.upstream.guard import Guard, GuardPolicy, blocked_reason
from tests.upstream.guard_stubs import FakeClock, StubResolver


class Listener:
    """A loopback HTTP/1.1 server that records each request path; 302s ``/redirect?to=<url>``."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.connections = 0
        self.server: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self) -> Listener:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        head = await reader.readuntil(b"\r\n\r\n")
        path = head.split(b" ", 2)[1].decode()
        self.paths.append(path)
        if path.startswith("/redirect?to="):
            status, extra = "302 Found", f"Location: {path.split('=', 1)[1]}\r\n"
        else:
            status, extra = "200 OK", ""
        writer.write(f"HTTP/1.1 {status}\r\n{extra}Content-Length: 2\r\nConnection: close\r\n\r\nok".encode())
        await writer.drain()
        writer.close()

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()


@pytest.fixture
async def listener():
    server = await Listener().start()
    yield server
    await server.stop()


def session_for(guard: Guard, **kwargs) -> aiohttp.ClientSession:
    # Exactly how the app builds it: one connector, our resolver, aiohttp's DNS cache off.
    connector = aiohttp.TCPConnector(resolver=guard.resolver(), use_dns_cache=False, force_close=True)
    return aiohttp.ClientSession(connector=connector, **kwargs)


def public_guard(clock=None, **settings) -> tuple[Guard, StubResolver]:
    stub = StubResolver({"upstream.example.com": ["127.0.0.1"], "front.example.com": ["127.0.0.1"],
                         "rebind.example.com": [["127.0.0.1"], ["127.0.0.2"]]})
    policy = GuardPolicy.from_settings(Settings(host="0.0.0.0", **settings))
    return Guard(policy, resolver=stub, clock=clock or FakeClock()), stub


async def test_resolver_block_surfaces_unwrapped_and_nothing_connects(listener: Listener, tripwire):
    guard, stub = public_guard()
    async with session_for(guard) as session:
        with pytest.raises(InvalidCustomHost) as caught:
            await session.get(f"http://upstream.example.com:{listener.port}/v1/models")
    assert type(caught.value) is InvalidCustomHost  # not wrapped into ClientConnectorError
    assert not isinstance(caught.value, (aiohttp.ClientError, OSError))
    assert blocked_reason(caught.value) is caught.value
    assert "resolves to 127.0.0.1, a loopback address" in caught.value.reason
    assert stub.calls and listener.connections == 0 and tripwire.connects == []


async def test_positive_control_the_listener_sees_allowed_connections(listener: Listener):
    guard, _ = public_guard(allowed_upstreams=("127.0.0.1",))
    async with session_for(guard) as session:
        async with session.get(f"http://upstream.example.com:{listener.port}/v1/models") as response:
            assert response.status == 200
    assert listener.paths == ["/v1/models"]


async def test_rebinding_through_aiohttp(listener: Listener, tripwire, clock: FakeClock):
    guard, stub = public_guard(clock=clock, allowed_upstreams=("127.0.0.1",))
    url = f"http://rebind.example.com:{listener.port}/"
    async with session_for(guard) as session:
        for _ in range(2):  # first answer 127.0.0.1 (allowed), pinned for the TTL
            async with session.get(url) as response:
                assert response.status == 200
        clock.advance(31)  # now the name answers 127.0.0.2, which is not allowed
        with pytest.raises(InvalidCustomHost, match="resolves to 127.0.0.2"):
            await session.get(url)
    assert len(stub.calls_for("rebind.example.com")) == 2
    assert listener.connections == 2
    assert all(address[0] == "127.0.0.1" for address in tripwire.connects)


async def test_dns_failure_surfaces_as_client_connector_dns_error(listener: Listener):
    guard, _ = public_guard()
    guard.resolver()._inner.table["gone.example.com"] = socket.gaierror(-2, "Name or service not known")
    async with session_for(guard) as session:
        with pytest.raises(aiohttp.ClientConnectorDNSError) as caught:
            await session.get(f"http://gone.example.com:{listener.port}/")
    assert blocked_reason(caught.value) is None  # a real DNS failure is not a block: 502, retryable


async def test_ip_literals_skip_the_resolver_so_check_url_must_run_first(listener: Listener):
    guard, stub = public_guard()
    url = f"http://127.0.0.1:{listener.port}/literal"
    with pytest.raises(InvalidCustomHost, match="loopback"):
        guard.check_url(url)
    # Demonstration of the aiohttp behaviour the module docstring warns about: without check_url
    # (or the middleware) an IP literal goes straight to the socket. Loopback only, by construction.
    async with session_for(guard) as session:
        async with session.get(url) as response:
            assert response.status == 200
    assert stub.calls == [] and listener.paths == ["/literal"]


async def test_client_middleware_blocks_ip_literals(listener: Listener):
    guard, _ = public_guard()
    async with session_for(guard, middlewares=(guard.client_middleware(),)) as session:
        with pytest.raises(InvalidCustomHost, match="127.0.0.1 is a loopback address"):
            await session.get(f"http://127.0.0.1:{listener.port}/literal")
    assert listener.connections == 0


async def test_client_middleware_checks_every_redirect_hop(listener: Listener):
    # front.example.com is allow-listed by name (it resolves to 127.0.0.1); it redirects to a bare
    # loopback literal, which is not allowed and would never reach the resolver.
    guard, _ = public_guard(allowed_upstreams=("front.example.com",))
    target = f"http://127.0.0.1:{listener.port}/secret"
    async with session_for(guard, middlewares=(guard.client_middleware(),)) as session:
        with pytest.raises(InvalidCustomHost, match="127.0.0.1 is a loopback address"):
            await session.get(f"http://front.example.com:{listener.port}/redirect?to={target}")
    assert listener.paths == [f"/redirect?to={target}"]  # the hop to /secret never happened


async def test_non_canonical_ipv4_literal_is_rejected_by_aiohttp_too(listener: Listener):
    guard, _ = public_guard()
    async with session_for(guard) as session:
        with pytest.raises(aiohttp.InvalidUrlClientError):
            await session.get(f"http://127.1:{listener.port}/")
    assert listener.connections == 0


def test_tripwire_stops_non_loopback_traffic_before_it_leaves(tripwire):
    with pytest.raises(AssertionError, match="real DNS lookup"):
        socket.getaddrinfo("example.com", 80)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        with pytest.raises(AssertionError, match="tried to connect"):
            sock.connect(("192.0.2.1", 9))  # TEST-NET-1; refused by the tripwire before any syscall
    assert tripwire.connects == [("192.0.2.1", 9)]
