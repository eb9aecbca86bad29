"""Shared fixtures for the upstream tests, above all a network tripwire.

Hard rule: no test here may send a packet to a non-loopback address, even if the guard under test
were broken. The autouse tripwire makes that structural: every DNS lookup for a real name and every
socket connect to a non-loopback address fails the test instead of leaving the machine.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.upstream.guard_stubs import FakeClock
from tests.upstream.raw import Answer, Upstream


def _is_loopback_literal(host) -> bool:
    if host is None:
        return True  # getaddrinfo(None, port): the wildcard for bind, never a destination
    if isinstance(host, bytes):
        host = host.decode()
    try:
        return ipaddress.ip_address(str(host).split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class Tripwire:
    def __init__(self) -> None:
        self.connects: list[object] = []  # every destination a test tried to connect to


@pytest.fixture(autouse=True)
def tripwire(monkeypatch) -> Tripwire:
    wire = Tripwire()
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host, *args, **kwargs):
        if not _is_loopback_literal(host):
            raise AssertionError(f"test tried a real DNS lookup for {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    def check(sock, address) -> None:
        wire.connects.append(address)
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback_literal(address[0]):
            raise AssertionError(f"test tried to connect to {address!r}")

    def connect(sock, address):
        check(sock, address)
        return real_connect(sock, address)

    def connect_ex(sock, address):
        check(sock, address)
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    return wire


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def upstreams() -> AsyncIterator[Callable[..., Awaitable[Upstream]]]:
    """Starts raw upstreams (raw.py) on loopback addresses; all are stopped after the test."""
    started: list[Upstream] = []

    async def start(answer: Answer, address: str = "127.0.0.1", port: int = 0) -> Upstream:
        upstream = await Upstream(answer, address, port).start()
        started.append(upstream)
        return upstream

    yield start
    for upstream in started:
        await upstream.stop()
