"""Socket writes of one turn of the event loop, sent together once the turn's callbacks have run.

Why: on the machines we measure (virtual machines, loopback or a near host), a ``send`` runs the receiver's
side of TCP in the sender's system call and wakes the receiving process, which sleeps between requests: an
inter-processor interrupt, a VM exit. Under load the event loop starts many requests in one turn; written as
each is ready, every request to an upstream and every answer to a client woke its reader once: the sends
were a fifth of the loop's time, nearly half of it those wake-ups (docs/benchmarks.md, "Sends batched per
loop turn"). Written together, the first send of a batch wakes the reader and the rest find it awake: the
same bytes, in the same order per connection, fewer wake-ups.

The cost is latency of at most one turn: the batch is flushed by a callback scheduled with the first write of
the turn, which runs after the callbacks already queued and one poll for I/O. At one request at a time that
is the poll's system call.

A caller that writes to or closes a transport directly must ``flush`` first, so that nothing it batched is
overtaken or lost (a closed transport's batched bytes are dropped: its connection is gone). Every flush first
runs ``before_send``, the step that must come before any answer leaves: the request log journals the turn's
answered requests there (telemetry/service.py), so a handler need not wait a turn for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class WriteBatch:
    __slots__ = ("_data", "_scheduled_on", "_transports", "before_send")

    def __init__(self) -> None:
        self._transports: list[Any] = []  # asyncio transports, in the order of their writes
        self._data: list[bytes | tuple[bytes, ...]] = []  # what each writes: bytes, or pieces for writelines
        self._scheduled_on: asyncio.AbstractEventLoop | None = None  # the loop a flush is queued on
        self.before_send: Callable[[], None] | None = None  # run by every flush before its sends (app.py)

    def write(self, loop: asyncio.AbstractEventLoop, transport: Any, data: bytes | tuple[bytes, ...]) -> None:
        """Send ``data`` on ``transport`` when this turn's callbacks are done (pieces as one ``writelines``)."""
        self._transports.append(transport)
        self._data.append(data)
        if self._scheduled_on is not loop:  # none queued yet (or on a loop since stopped, in tests)
            self._scheduled_on = loop
            loop.call_soon(self.flush)

    def holds(self, transport: Any) -> bool:
        """Whether bytes for ``transport`` wait here (a connection that looks idle is not, yet)."""
        return transport in self._transports

    def flush(self) -> None:
        """Send everything batched, now, in order."""
        self._scheduled_on = None
        if self.before_send is not None:
            self.before_send()
        transports, data = self._transports, self._data
        if not transports:
            return
        self._transports, self._data = [], []
        for index, transport in enumerate(transports):
            if transport.is_closing():  # the connection ended in the meantime: nobody reads this
                continue
            item = data[index]
            try:
                if isinstance(item, bytes):
                    transport.write(item)
                else:
                    transport.writelines(item)
            except Exception:  # a transport that broke between is_closing and write: its protocol hears of it
                # from the transport itself (connection_lost); the other writes still go out
                continue
