"""The asyncio streaming client: many SSE streams at once, each chunk timed against its send time.

Why Python here (and wrk elsewhere): wrk cannot time individual chunks inside one response. Each
chunk from the paced upstream carries its CLOCK_MONOTONIC send time (`t=<ns>`), so a chunk's delay
through the hop is `arrival - send` on one shared clock; the direct run measures the same client, so
"added" figures subtract the client's own cost. A chunk later than HELD_BACK_MS is "held back": the
signature of Nagle's algorithm meeting delayed ACKs (40 ms on Linux), or of a buffering proxy.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field

import aiohttp

from bench.targets import Endpoint

STAMP = re.compile(rb"t=(\d+)")
HELD_BACK_MS = 40.0


@dataclass
class StreamSamples:
    """Raw samples from one batch of streams (µs), pooled by the caller across rounds.

    ``ttft_us`` holds every stream's time to first token; the one-stream scenario also files each sample
    under one of two kinds of start (``ttft_back_to_back_us``, ``ttft_cold_us``), which it alone can tell.
    """
    ttft_us: list[float] = field(default_factory=list)
    ttft_back_to_back_us: list[float] = field(default_factory=list)
    ttft_cold_us: list[float] = field(default_factory=list)
    chunk_delay_us: list[float] = field(default_factory=list)
    chunks: int = 0
    expected_chunks: int = 0
    failed: int = 0
    held_back: int = 0
    errors: list[str] = field(default_factory=list)

    def merge(self, other: StreamSamples) -> None:
        self.ttft_us += other.ttft_us
        self.ttft_back_to_back_us += other.ttft_back_to_back_us
        self.ttft_cold_us += other.ttft_cold_us
        self.chunk_delay_us += other.chunk_delay_us
        self.chunks += other.chunks
        self.expected_chunks += other.expected_chunks
        self.failed += other.failed
        self.held_back += other.held_back
        self.errors += other.errors[: max(0, 5 - len(self.errors))]  # keep a few, for the report


@dataclass
class OpenCount:
    """How many streams have delivered a first chunk and not yet ended (for the memory scenario)."""
    now: int = 0
    peak: int = 0

    def opened(self) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)


async def one_stream(session: aiohttp.ClientSession, endpoint: Endpoint, out: StreamSamples,
                     count: OpenCount | None = None) -> None:
    sent = time.monotonic_ns()
    opened = False
    try:
        async with session.post(endpoint.url, data=endpoint.body, headers=dict(endpoint.headers)) as resp:
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}: {(await resp.read())[:200]!r}")
            tail = b""
            # Whole reads, not lines: half the Python work per chunk, which matters when one client
            # process must keep up with 10,000 chunks/s. Events end with a blank line; a partial
            # event waits in `tail` for the rest, so a stamp split across reads is never misread.
            async for data in resp.content.iter_any():
                now = time.monotonic_ns()
                buffer = tail + data
                end = buffer.rfind(b"\n\n") + 2
                tail = buffer[end:] if end >= 2 else buffer
                for match in STAMP.finditer(buffer, 0, end if end >= 2 else 0):
                    if not opened:
                        opened = True
                        out.ttft_us.append((now - sent) / 1e3)
                        if count is not None:
                            count.opened()
                    _record(out, (now - int(match.group(1))) / 1e3)
    finally:
        if count is not None and opened:
            count.now -= 1


def _record(out: StreamSamples, delay_us: float) -> None:
    out.chunk_delay_us.append(delay_us)
    out.chunks += 1
    if delay_us > HELD_BACK_MS * 1e3:
        out.held_back += 1


async def _guarded(session: aiohttp.ClientSession, endpoint: Endpoint, out: StreamSamples,
                   count: OpenCount | None) -> None:
    try:
        await one_stream(session, endpoint, out, count)
    except (TimeoutError, aiohttp.ClientError, RuntimeError, ValueError) as exc:
        out.failed += 1
        if len(out.errors) < 5:
            out.errors.append(f"{type(exc).__name__}: {exc}"[:300])


def session_for(timeout_s: float) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=0, force_close=False, enable_cleanup_closed=True)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s))


async def run_batch(endpoint: Endpoint, streams: int, concurrency: int, chunks_per_stream: int,
                    timeout_s: float, ramp_per_s: float = 0.0, count: OpenCount | None = None,
                    stop: asyncio.Event | None = None) -> StreamSamples:
    """`streams` streams, at most `concurrency` at once; bounded by count and, as a whole, by `timeout_s`.

    Setting `stop` ends the batch early (the memory scenario stops once it has seen every stream
    open); streams cut short that way are not failures, streams cut short by the time bound are.
    """
    out = StreamSamples(expected_chunks=streams * chunks_per_stream)
    gate = asyncio.Semaphore(concurrency)

    async def gated(index: int) -> None:
        if ramp_per_s:
            await asyncio.sleep(index / ramp_per_s)  # open gradually: a burst would test the backlog
        async with gate:
            await _guarded(session, endpoint, out, count)

    async with session_for(timeout_s) as session:
        tasks = [asyncio.ensure_future(gated(i)) for i in range(streams)]
        stopped = await _wait_all_or_stop(tasks, stop, timeout_s)
        pending = [task for task in tasks if not task.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if pending and not stopped:
            out.failed += len(pending)
            out.errors.append(f"{len(pending)} streams unfinished when the batch's {timeout_s:.0f} s bound ran out")
    return out


async def _wait_all_or_stop(tasks: list[asyncio.Future], stop: asyncio.Event | None, timeout_s: float) -> bool:
    """Wait for every task, for `stop`, or for the time bound; True if `stop` ended the wait."""
    everything = asyncio.ensure_future(asyncio.wait(tasks))
    waiters = {everything}
    stopper = asyncio.ensure_future(stop.wait()) if stop is not None else None
    if stopper is not None:
        waiters.add(stopper)
    await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    return stop is not None and stop.is_set()
