"""Long-lived HTTP clients, one per checked origin and address: how pinning works without a resolver hook.

A pyreqwest client cannot ask Python where a name points, so each client is built for one
``(scheme, host, port, address)`` the SSRF guard has judged, with the name mapped to that address inside the
client (``build`` does that); it is only ever handed URLs of that origin. Clients are costly to build (an
https one ~5 ms, for the system's TLS roots; any ~110 KiB), so they are kept in a bounded least-recently-used
pool and leased per request: a client leaves the pool when it is evicted or when the allow-list changes (the
guard's ``generation``), and is closed once the requests that hold it are done, so a changed verdict never
rides on an old connection.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, Protocol

DEFAULT_POOL_SIZE = 64


class ClientKey(NamedTuple):
    scheme: str
    host: str  # as the client's URL parser writes it: IDNA ASCII, IPv6 in brackets
    port: int
    address: str  # the checked IP literal the client connects to


class Closable(Protocol):
    def close(self) -> Awaitable[None]: ...


class Lease:
    """One client in use by ``holders`` requests; closed when retired and no longer held."""

    __slots__ = ("client", "holders", "key", "retired")

    def __init__(self, key: ClientKey, client: Any) -> None:
        self.key = key
        self.client = client
        self.holders = 0
        self.retired = False


class ClientPool:
    def __init__(self, build: Callable[[ClientKey], Any], generation: Callable[[], int], *,
                 size: int = DEFAULT_POOL_SIZE) -> None:
        self._build = build
        self._generation = generation
        self._seen_generation = generation()
        self._size = size
        self._leases: OrderedDict[ClientKey, Lease] = OrderedDict()
        self._closing: set[asyncio.Task[None]] = set()
        self.in_use = 0  # requests holding a client, retired ones included: over HTTP/1.1, connections in use

    def __len__(self) -> int:
        return len(self._leases)

    def acquire(self, key: ClientKey) -> Lease:
        """The client for ``key`` (built on first use), held until ``release``."""
        generation = self._generation()
        if generation != self._seen_generation:
            self._seen_generation = generation
            self._retire_all()
        lease = self._leases.get(key)
        if lease is None:
            lease = self._leases[key] = Lease(key, self._build(key))
            while len(self._leases) > self._size:
                self._retire(self._leases.popitem(last=False)[1])
        else:
            self._leases.move_to_end(key)
        lease.holders += 1
        self.in_use += 1
        return lease

    def release(self, lease: Lease) -> None:
        lease.holders -= 1
        self.in_use -= 1
        if lease.retired and lease.holders == 0:
            self._close_later(lease)

    async def close(self) -> None:
        """At shutdown: close every client, held or not (the server has stopped taking requests)."""
        leases = list(self._leases.values())
        self._leases.clear()
        for lease in leases:
            lease.retired = True
            self._close_later(lease)
        while self._closing:
            await asyncio.gather(*list(self._closing), return_exceptions=True)

    def _retire_all(self) -> None:
        leases = list(self._leases.values())
        self._leases.clear()
        for lease in leases:
            self._retire(lease)

    def _retire(self, lease: Lease) -> None:
        lease.retired = True
        if lease.holders == 0:
            self._close_later(lease)

    def _close_later(self, lease: Lease) -> None:
        if lease.client is None:
            return  # already closing
        client, lease.client = lease.client, None
        task = asyncio.get_running_loop().create_task(client.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
