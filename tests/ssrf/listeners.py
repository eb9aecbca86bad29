"""Trap listeners for the end-to-end SSRF scenarios: every connection they accept is a recorded hit.

They bind the wildcard addresses (``0.0.0.0`` and ``::``, IPv6-only) on a few ports inside the scenario's
network namespace, so a connection to ANY address there on one of those ports (loopback, the private and
metadata addresses the test put on ``lo``, ``0.0.0.0``) lands here, and the socket's local address says
which target it was meant for. A hit is recorded at accept time, before a byte is read: a refused
request must leave no connection at all, not merely no complete HTTP request.

Each connection gets a small JSON 200 that names the listener, so a legitimate request shows, through the
gateway's relayed body, which address it really reached.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import orjson

READ_TIMEOUT_S = 5.0
MAX_BODY = 1 << 20


@dataclass
class Hit:
    address: str  # the local address the connection was made to, i.e. the gateway's target
    port: int
    request_line: str = ""  # empty when the peer sent nothing (a bare connection attempt)

    def as_dict(self) -> dict:
        return asdict(self)


def _plain(address: str) -> str:
    """``::ffff:10.0.0.5`` as ``10.0.0.5``: the IPv4 target it is on the wire."""
    parsed = ipaddress.ip_address(address.split("%", 1)[0])
    mapped = getattr(parsed, "ipv4_mapped", None)
    return str(mapped or parsed)


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return min(int(value.strip()), MAX_BODY)
    return 0


class Traps:
    """Wildcard listeners on ``ports``; ``hits`` grows by one per accepted connection."""

    def __init__(self, ports: Iterable[int]) -> None:
        self.ports = sorted(set(ports))
        self.hits: list[Hit] = []
        self._servers: list[asyncio.base_events.Server] = []

    async def start(self) -> Traps:
        for port in self.ports:
            # asyncio marks the AF_INET6 socket IPv6-only, so the two sockets split the families cleanly.
            server = await asyncio.start_server(self._serve, host=["0.0.0.0", "::"], port=port)
            self._servers.append(server)
        return self

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        local = writer.get_extra_info("sockname")
        hit = Hit(_plain(local[0]), local[1])
        self.hits.append(hit)
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
                hit.request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
                await reader.readexactly(_content_length(head))
            writer.write(_answer(hit))
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            pass  # a TLS hello, a half request or a reset: the hit is recorded all the same
        finally:
            writer.close()


def _answer(hit: Hit) -> bytes:
    body = orjson.dumps({"object": "trap", **hit.as_dict()})
    head = (
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body
