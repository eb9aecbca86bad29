"""The requests in the foreground: taken by the native edge and not yet answered with a first byte.

That stretch is what a client waits through (all of a buffered answer's latency, a stream's time to its first
token), and on a small machine whatever else the event loop runs meanwhile adds to it. The request log's drain
finishes rows in slices of 0.2 ms, and a slice begun while a request waited for its upstream held each of the
request's next steps (the upstream's head, its first event, the relay) for up to a slice: in a trace of
sequential streams, four of five of the slowest first tokens overlapped slices, ~0.8 ms of them each
(docs/benchmarks.md, "The log's work waits for a quiet loop"). So background work first awaits ``quiet``,
which returns once no request is in the foreground, or after its bound, so that a gateway that is never quiet
still gets its log written.
"""

from __future__ import annotations

import asyncio


class Foreground:
    __slots__ = ("_waiters", "count")

    def __init__(self) -> None:
        self.count = 0
        self._waiters: list[asyncio.Future[None]] = []  # ``quiet`` calls waiting for the count to reach 0

    def enter(self) -> None:
        self.count += 1

    def leave(self) -> None:
        self.count -= 1
        if not self.count and self._waiters:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                _wake(waiter)

    async def quiet(self, bound_s: float) -> None:
        """Return once no request is in the foreground, or after ``bound_s`` at the latest (at once when none
        is, or the bound is spent)."""
        if not self.count or bound_s <= 0:
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(bound_s, _wake, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            if waiter in self._waiters:  # the bound passed (or the waiter was cancelled): not woken by leave
                self._waiters.remove(waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
